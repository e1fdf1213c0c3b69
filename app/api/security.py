"""Protection at the edge: body size and time limits, security headers, per-client rate limit, staff API key."""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
from fastapi import HTTPException, Request

from app.api.errors import send_error

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]

# The kiosk page uses only its own scripts, styles and images: nothing inline, nothing from elsewhere.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
        b"frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class BodyLimitMiddleware:
    """413 for bodies over the limit, whether announced by Content-Length or sent in chunks; 408 for a body
    that has not fully arrived `timeout_s` after the request began (a slow client would hold its connection)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = f"request body larger than {self.max_bytes} bytes"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await send_error(scope, send, 413, too_large, close=True)
        deadline = time.monotonic() + self.timeout_s
        received = 0
        body_done = False
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, body_done
            if body_done:  # later receives only wait for a disconnect (streamed answers): no deadline
                return await receive()
            try:
                with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                raise _TooSlow from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
                body_done = not message.get("more_body", False)
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await send_error(scope, send, 413, too_large, close=True)
        except _TooSlow:
            if not started:
                too_slow = f"the request body did not arrive within {self.timeout_s:g} s"
                await send_error(scope, send, 408, too_slow, close=True)


class _TooLarge(BaseException):
    """Not an Exception: FastAPI turns any Exception raised while reading a body into a 400."""


class _TooSlow(BaseException):
    """Likewise."""


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


class RateLimiter:
    """Sliding one-minute window per client address; only counts, never stores the address elsewhere."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_clients: int = 50_000):
        self.per_minute = per_minute
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._max_clients = max_clients

    def retry_after(self, client: str) -> int:
        """0 when the client may proceed (and the hit is counted), else seconds to wait."""
        now = self._clock()
        hits = self._hits.setdefault(client, deque())
        while hits and now - hits[0] >= 60:
            hits.popleft()
        if len(hits) >= self.per_minute:
            return max(1, int(60 - (now - hits[0])) + 1)
        hits.append(now)
        if len(self._hits) > self._max_clients:  # forget idle clients rather than grow without bound
            for key in [k for k, v in self._hits.items() if not v or now - v[-1] >= 60]:
                del self._hits[key]
        return 0

    def check(self, request: Request) -> None:
        client = request.client.host if request.client else "unknown"
        wait = self.retry_after(client)
        if wait:
            raise HTTPException(
                429, "too many questions from this kiosk; please wait a moment", headers={"Retry-After": str(wait)}
            )


def api_key_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison; no configured key means staff routes are closed."""
    return bool(expected) and given is not None and secrets.compare_digest(given.encode(), expected.encode())
