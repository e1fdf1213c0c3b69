"""Running a question for a route: errors mapped to status codes, metrics and the usage record."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any

import anyio
from fastapi import HTTPException
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.api.schemas import AskResponse, Source
from app.generation.worker import Overloaded
from app.kiosk.language import Language
from app.kiosk.pipeline import Answer, Kiosk
from app.prompt import Turn
from app.records import Records, RequestRecord

log = logging.getLogger(__name__)
RETRY_AFTER = {"Retry-After": "5"}


def to_response(answer: Answer) -> AskResponse:
    return AskResponse(
        answer=answer.answer,
        related=answer.related,
        relevance=round(answer.relevance, 4),
        route=answer.route,
        sources=[Source(id=p.id, title=p.title, section=p.section, url=p.url) for p in answer.sources],
        suggestions=answer.suggestions,
        session_id=answer.session_id,
        request_id=answer.request_id,
        latency_ms=answer.latency_ms,
        language=answer.language,
    )


async def answer_question(
    kiosk: Kiosk,
    records: Records,
    question: str,
    session_id: str | None,
    on_text: Callable[[str], None] | None = None,
    history: list[Turn] | None = None,
    *,
    deadline: float | None = None,
    request_id: str | None = None,
    max_new_tokens: int | None = None,
    language: Language | None = None,
) -> Answer:
    """Answer, or raise the HTTPException a client should see (503 with Retry-After, never a 500 for load)."""
    metrics = kiosk.s.metrics
    try:
        answer = await kiosk.ask(
            question,
            session_id,
            on_text,
            history,
            deadline=deadline,
            request_id=request_id,
            max_new_tokens=max_new_tokens,
            language=language,
        )
    except Overloaded as exc:
        metrics.requests.labels("generated", "503").inc()
        raise HTTPException(503, f"busy: {exc}; please retry shortly", headers=RETRY_AFTER) from exc
    except TimeoutError as exc:
        metrics.requests.labels("generated", "503").inc()
        raise HTTPException(503, "the answer took too long; please retry", headers=RETRY_AFTER) from exc
    finally:
        if kiosk.s.worker is not None:
            metrics.queue_depth.set(kiosk.s.worker.depth)
    metrics.requests.labels(answer.route, "200").inc()
    metrics.latency.labels(answer.route).observe(answer.latency_ms / 1000)
    record = RequestRecord(
        answer.request_id, answer.route, answer.related, answer.relevance, answer.latency_ms, answer.tokens, question
    )
    await run_in_threadpool(records.add_request, record)  # committed before the response leaves
    log.info(
        "request %s route=%s related=%s relevance=%.3f latency_ms=%.1f tokens=%d",
        answer.request_id,
        answer.route,
        answer.related,
        answer.relevance,
        answer.latency_ms,
        answer.tokens,
    )
    return answer


def refuse_when_full(kiosk: Kiosk) -> None:
    """A stream answers 200 before it knows its fate: a full queue is refused before the stream starts."""
    worker = kiosk.s.worker
    if worker is not None and worker.is_full():
        raise HTTPException(503, "busy: the generation queue is full; please retry shortly", headers=RETRY_AFTER)


class EventStream(StreamingResponse):
    """Server-Sent Events that stop the moment the client disconnects.

    Starlette's StreamingResponse notices a disconnect (ASGI 2.4 servers) only when a later write fails and
    leaves the body generator to the garbage collector; here the disconnect is listened for, and the
    stream is cancelled at once, which cancels the generation within one step.
    """

    media_type = "text/event-stream"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async with anyio.create_task_group() as group:

            async def stream_then_stop() -> None:
                await self.stream_response(send)
                group.cancel_scope.cancel()

            group.start_soon(stream_then_stop)
            await self.listen_for_disconnect(receive)
            group.cancel_scope.cancel()


def event_stream_response(description: str, events: list[str] | None = None) -> dict[int | str, dict[str, Any]]:
    """How a route declares its Server-Sent Events: one item schema per event (OpenAPI 3.2's `itemSchema`)."""
    item: dict[str, Any] = {"type": "object", "required": ["data"], "properties": {"data": {"type": "string"}}}
    if events:
        item["required"].append("event")
        item["properties"]["event"] = {"enum": events}
    return {200: {"description": description, "content": {"text/event-stream": {"itemSchema": item}}}}


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def stream_answer(run: Callable[[Callable[[str], None]], Any]) -> AsyncGenerator[tuple[str, Any]]:
    """Yields ("delta", text) as text arrives, then ("done", result) or ("error", HTTPException).

    `run(on_text)` is the coroutine that answers; if the client goes away, it is cancelled, which cancels
    the generation within one step.
    """
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def on_text(text: str) -> None:  # called from the worker thread or the loop
        loop.call_soon_threadsafe(events.put_nowait, ("delta", text))

    async def runner() -> None:
        try:
            result = await run(on_text)
            loop.call_soon(events.put_nowait, ("done", result))
        except HTTPException as exc:
            loop.call_soon(events.put_nowait, ("error", exc))
        except Exception as exc:
            log.exception("streamed answer failed")
            loop.call_soon(events.put_nowait, ("error", HTTPException(503, f"answer failed: {type(exc).__name__}")))

    task = asyncio.create_task(runner())
    try:
        while True:
            kind, payload = await events.get()
            yield kind, payload
            if kind in ("done", "error"):
                break
    finally:
        if not task.done():
            task.cancel()
