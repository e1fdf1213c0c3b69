"""`/v1/models` and `/v1/chat/completions` in the OpenAI form, so chat clients can use the kiosk (same gate)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import aclosing
from functools import partial
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from app.api.answering import EventStream, answer_question, refuse_when_full, stream_answer
from app.api.deps import DeadlineDep, KioskDep, RecordsDep, rate_limited
from app.api.errors import OPENAI_PREFIX, openai_error
from app.api.schemas import MODEL_ID, ChatCompletionRequest
from app.kiosk.pipeline import Answer
from app.prompt import Turn


class OpenAIError(HTTPException):
    """An error that names the request field at fault (`param`)."""

    def __init__(self, status_code: int, detail: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(status_code, detail)
        self.param = param
        self.code = code


def error_body(exc: HTTPException) -> dict[str, Any]:
    """The error in OpenAI's form, with the field at fault and the code when the exception names them."""
    return openai_error(exc.status_code, str(exc.detail), getattr(exc, "param", None), getattr(exc, "code", None))


def _validation_error(exc: RequestValidationError) -> OpenAIError:
    """422, with each problem's field path; the input itself is not repeated."""
    problems = [(".".join(str(part) for part in e["loc"] if part != "body"), e["msg"]) for e in exc.errors()]
    message = "; ".join(f"{field}: {msg}" if field else msg for field, msg in problems)
    return OpenAIError(422, message, param=problems[0][0] or None if problems else None)


class OpenAIRoute(APIRoute):
    """Every error of these routes (validation, rate limit, busy, unknown model) in OpenAI's form, not `{"detail"}`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_openai_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except (RequestValidationError, HTTPException) as exc:
                error = _validation_error(exc) if isinstance(exc, RequestValidationError) else exc
                return JSONResponse(error_body(error), status_code=error.status_code, headers=error.headers)

        return with_openai_errors


router = APIRouter(prefix=OPENAI_PREFIX, tags=["openai-compatible"], route_class=OpenAIRoute)


def _model() -> dict[str, Any]:
    return {"id": MODEL_ID, "object": "model", "created": int(time.time()), "owned_by": "hcm-kiosk"}


def _unknown_model() -> OpenAIError:
    return OpenAIError(404, f"the model does not exist; the one model is '{MODEL_ID}'", "model", "model_not_found")


@router.get("/models")
async def list_models() -> dict[str, Any]:
    """The one model there is: OpenAI clients often ask before anything else."""
    return {"object": "list", "data": [_model()]}


@router.get("/models/{model_id:path}")
async def get_model(model_id: str) -> dict[str, Any]:
    if model_id != MODEL_ID:
        raise _unknown_model()
    return _model()


def _question_and_history(body: ChatCompletionRequest) -> tuple[str, list[Turn]]:
    messages = [m for m in body.messages if m.role != "system"]  # the kiosk keeps its own instructions
    if not messages or messages[-1].role != "user" or not messages[-1].content.strip():
        raise OpenAIError(422, "the last message must be a non-empty user message", "messages")
    question = messages[-1].content.strip()
    if len(question) > 500:
        raise OpenAIError(422, "the question must be at most 500 characters", "messages")
    history = [
        Turn(q.content, a.content)
        for q, a in zip(messages[:-1:2], messages[1:-1:2], strict=False)
        if q.role == "user" and a.role == "assistant"
    ]
    return question, history


def _suggested(answer: Answer) -> str:
    """After an off-topic question, the suggested questions that its reply announces, one per line."""
    return "".join(f"\n- {s}" for s in answer.suggestions)


def _usage(answer: Answer) -> dict[str, int]:
    """Tokens the model read and wrote; both 0 for FAQ, curated and off-topic answers, which no model wrote."""
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.tokens,
        "total_tokens": answer.prompt_tokens + answer.tokens,
    }


def _completion(answer: Answer, created: int) -> dict[str, Any]:
    message = {"role": "assistant", "content": answer.answer + _suggested(answer)}
    return {
        "id": f"chatcmpl-{answer.request_id}",
        "object": "chat.completion",
        "created": created,
        "model": MODEL_ID,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish}],
        "usage": _usage(answer),
        "kiosk": {
            "route": answer.route,
            "related": answer.related,
            "relevance": round(answer.relevance, 4),
            "sources": [p.id for p in answer.sources],
        },
    }


async def _chunks(
    run: Callable[[Callable[[str], None]], Awaitable[Answer]], request_id: str, created: int, include_usage: bool
) -> AsyncIterator[str]:
    """The completion as OpenAI streams it: every chunk with the completion's own id, then (if asked) the usage."""

    def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
        body = {
            "id": f"chatcmpl-{request_id}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL_ID,
            "choices": choices,
            **({"usage": usage} if include_usage else {}),
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    def delta(content: dict[str, str], finish: str | None = None) -> str:
        return chunk([{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}])

    yield delta({"role": "assistant", "content": ""})
    async with aclosing(stream_answer(run)) as stream:  # closed at once if the client goes away
        async for kind, payload in stream:
            if kind == "delta":
                yield delta({"content": payload})
            elif kind == "done":
                if payload.suggestions:
                    yield delta({"content": _suggested(payload)})
                yield delta({}, payload.finish)
                if include_usage:  # as OpenAI sends it: no choices, only the usage
                    yield chunk([], _usage(payload))
            else:
                yield f"data: {json.dumps(error_body(payload), ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"


# Their errors (OpenAI's form) are declared where the router is included (app.main).


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    request: Request, body: ChatCompletionRequest, kiosk: KioskDep, records: RecordsDep, deadline: DeadlineDep
) -> Any:
    """A chat completion for the last user message; earlier turns are context, system messages are ignored."""
    if body.model != MODEL_ID:
        raise _unknown_model()
    if body.n != 1:
        raise OpenAIError(400, "only n=1 is supported", "n", "unsupported_value")
    question, history = _question_and_history(body)
    rate_limited(request)  # after every check of the input: a malformed request gets its 422, not a 429
    request_id, created = uuid.uuid4().hex, int(time.time())
    ask = partial(
        answer_question,
        kiosk,
        records,
        question,
        None,
        history=history,
        deadline=deadline,
        request_id=request_id,
        max_new_tokens=body.max_completion_tokens or body.max_tokens,
    )
    if not body.stream:
        return _completion(await ask(), created)
    refuse_when_full(kiosk)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    events = _chunks(lambda on_text: ask(on_text=on_text), request_id, created, include_usage)
    return EventStream(events, headers={"Cache-Control": "no-store"})
