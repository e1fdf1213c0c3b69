"""Visitor routes: ask (plain and streamed), classify, feedback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from app.api.answering import (
    EventStream,
    answer_question,
    event_stream_response,
    refuse_when_full,
    sse,
    stream_answer,
    to_response,
)
from app.api.deps import DeadlineDep, KioskDep, RecordsDep, ServicesDep, rate_limited
from app.api.errors import BODY_ERRORS, BUSY, LIMITED, error_response
from app.api.schemas import AskRequest, AskResponse, ClassifyRequest, ClassifyResponse, FeedbackRequest
from app.kiosk.pipeline import Answer

# Every route here needs the services (503 while starting) and counts against the client's rate limit.
router = APIRouter(prefix="/api/v1", tags=["visitors"], responses={**BODY_ERRORS, **LIMITED, **BUSY})
STREAM = event_stream_response(
    "`delta` events with text, then one `done` event with the metadata (or one `error` event)",
    ["delta", "done", "error"],
)


@router.post("/ask", response_model=AskResponse)
async def ask(
    request: Request, body: AskRequest, kiosk: KioskDep, records: RecordsDep, deadline: DeadlineDep
) -> AskResponse:
    """Answer a question: staff FAQ, then the relevance gate, then a curated or a generated answer."""
    rate_limited(request)
    return to_response(
        await answer_question(kiosk, records, body.question, body.session_id, deadline=deadline, language=body.language)
    )


# response_class: only for the schema (no JSON 200); errors are still declared as JSON
@router.post("/ask/stream", response_class=Response, responses=STREAM)
async def ask_stream(
    request: Request, body: AskRequest, kiosk: KioskDep, records: RecordsDep, deadline: DeadlineDep
) -> EventStream:
    """Server-Sent Events: the answer's text as it is generated, then a final event with the metadata."""
    rate_limited(request)
    refuse_when_full(kiosk)

    async def events() -> AsyncIterator[str]:
        def run(on_text: Callable[[str], None]) -> Coroutine[Any, Any, Answer]:
            return answer_question(
                kiosk, records, body.question, body.session_id, on_text, deadline=deadline, language=body.language
            )

        # aclosing: when the visitor goes away this generator is closed, and the inner one must close (and
        # cancel the generation) now, not whenever the garbage collector gets to it.
        async with aclosing(stream_answer(run)) as stream:
            async for kind, payload in stream:
                if kind == "delta":
                    yield sse("delta", {"text": payload})
                elif kind == "done":
                    yield sse("done", to_response(payload).model_dump())
                else:
                    yield sse("error", {"status": payload.status_code, "detail": payload.detail})

    return EventStream(events(), headers={"Cache-Control": "no-store"})


@router.post("/classify", response_model=ClassifyResponse)
async def classify(request: Request, body: ClassifyRequest, services: ServicesDep) -> ClassifyResponse:
    """The relevance gate alone: is the question about Ho Chi Minh?"""
    rate_limited(request)
    score = services.gate.relevance(body.question)
    return ClassifyResponse(related=score >= services.gate.threshold, relevance=round(score, 4))


@router.post("/feedback", status_code=201, responses={404: error_response("Unknown request_id")})
async def feedback(request: Request, body: FeedbackRequest, records: RecordsDep) -> dict[str, bool]:
    """Record whether an answer helped (and an optional comment)."""
    rate_limited(request)
    if not await run_in_threadpool(records.add_feedback, body.request_id, body.helpful, body.comment):
        raise HTTPException(404, "unknown request_id")
    return {"recorded": True}
