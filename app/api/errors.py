"""Error responses: every 422 in one shape, OpenAI's form on /v1, any unhandled error a JSON 500, and what the
schema declares."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.schemas import ErrorResponse, OpenAIErrorResponse, ValidationErrorResponse

log = logging.getLogger(__name__)
Responses = dict[int | str, dict[str, Any]]

OPENAI_PREFIX = "/v1"
"""The routes that OpenAI clients call: every error under it, the middleware's too, comes in OpenAI's form."""

# OpenAI's error `type` and `code` for each status the kiosk returns there; any other: by its class
_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    503: ("server_error", "overloaded"),
}


def error_response(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


BODY_ERRORS: Responses = {
    422: {"model": ValidationErrorResponse, "description": "Invalid request"},
    408: error_response("The body did not arrive in time (KIOSK_BODY_TIMEOUT_S)"),
    413: error_response("Body larger than KIOSK_MAX_BODY_BYTES"),
}
LIMITED: Responses = {429: error_response("Too many requests from this client: retry after `Retry-After` s")}
BUSY: Responses = {503: error_response("Busy, starting or too slow: retry after `Retry-After` s")}
# The /v1 routes answer OpenAI clients in OpenAI's error form, the body limits' errors included.
OPENAI_ERRORS: Responses = {
    400: {"model": OpenAIErrorResponse, "description": "Unsupported value (`n` other than 1)"},
    404: {"model": OpenAIErrorResponse, "description": "Unknown model"},
    422: {"model": OpenAIErrorResponse, "description": "Invalid request"},
    429: {"model": OpenAIErrorResponse, "description": "Too many requests: retry after `Retry-After` s"},
    503: {"model": OpenAIErrorResponse, "description": "Busy, starting or too slow: retry after `Retry-After` s"},
    408: {"model": OpenAIErrorResponse, "description": BODY_ERRORS[408]["description"]},
    413: {"model": OpenAIErrorResponse, "description": BODY_ERRORS[413]["description"]},
}


def openai_error(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """`{"error": {"message", "type", "param", "code"}}`, the form OpenAI clients read."""
    kind, default_code = _KINDS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return {"error": {"message": message, "type": kind, "param": param, "code": code or default_code}}


def under_openai(path: str) -> bool:
    return path == OPENAI_PREFIX or path.startswith(OPENAI_PREFIX + "/")


def error_content(path: str, status: int, message: str) -> dict[str, Any]:
    """An error's body in the form of the route asked: OpenAI's under /v1, `{"detail"}` elsewhere."""
    return openai_error(status, message) if under_openai(path) else {"detail": message}


async def send_error(scope: Scope, send: Send, status: int, message: str, close: bool = False) -> None:
    """A JSON error from middleware, in the form of the route asked; `close` tells the server to end the
    connection (unread body, or a fault). The security headers come from their middleware, outside them all."""
    body = json.dumps(error_content(scope.get("path", ""), status, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _printable(text: str) -> str:
    """Text that encodes as UTF-8: a lone surrogate sent by a client is shown escaped instead of failing."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def issues(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI's validation errors without the `input` and `ctx` it echoes (a visitor's text, maybe unencodable)."""
    return [
        {
            "loc": [p if isinstance(p, int) else _printable(str(p)) for p in e.get("loc", ())],
            "msg": _printable(str(e.get("msg", ""))),
            "type": str(e.get("type", "value_error")),
        }
        for e in errors
    ]


def _invalid(loc: list[str | int], msg: str, kind: str) -> JSONResponse:
    return JSONResponse({"detail": issues([{"loc": loc, "msg": msg, "type": kind}])}, status_code=422)


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": issues(exc.errors())}, status_code=422)


async def http_error(request: Request, exc: Exception) -> Response:
    """A body that is not UTF-8 JSON is bad input like any other (422, not FastAPI's bare 400), and a route's
    own 422 takes the shape of the validation errors. Under /v1 (an unknown route or method there: the routes'
    own errors are theirs, `OpenAIRoute`), OpenAI's form."""
    assert isinstance(exc, StarletteHTTPException)
    if under_openai(request.url.path):
        content = openai_error(exc.status_code, str(exc.detail))
        return JSONResponse(content, status_code=exc.status_code, headers=exc.headers)
    if exc.status_code == 400 and "parsing the body" in str(exc.detail):
        return _invalid(["body"], "the request body must be UTF-8 encoded JSON", "json_invalid")
    if exc.status_code == 422 and isinstance(exc.detail, str):
        return _invalid(["body"], exc.detail, "value_error")
    return await http_exception_handler(request, exc)


def _where(exc: BaseException) -> str:
    """The innermost frame, as file:line in function: enough to find the bug, and no exception message (it
    may quote the request, as a RequestValidationError or a UnicodeEncodeError of a visitor's text does)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno} in {last.name}"


class UnhandledErrorMiddleware:
    """Any unhandled error: a JSON 500 (in the route's form) with `Connection: close`, logged without the
    request's data. Outside every middleware but the security headers', so that it covers the others too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            chain = [type(exc).__name__]
            if exc.__context__ is not None:
                chain.append(type(exc.__context__).__name__)
            log.error("unhandled %s at %s", " while handling ".join(chain), _where(exc))
            if not started:
                await send_error(scope, send, 500, "internal error", close=True)
            # A response already under way cannot become a 500: returning unfinished makes the server close
            # the connection, so the client sees it cut short rather than complete.
