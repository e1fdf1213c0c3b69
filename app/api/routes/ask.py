"""Visitor routes: ask (plain and streamed), classify, feedback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from app.api.answering import EventStream, answer_question, refuse_when_full, sse, stream_answer, to_response
from app.api.deps import DeadlineDep, KioskDep, RateLimited, RecordsDep, ServicesDep
from app.schemas import AskRequest, AskResponse, ClassifyRequest, ClassifyResponse, FeedbackRequest

router = APIRouter(prefix="/api/v1", tags=["visitors"])
BUSY: dict[int | str, dict[str, Any]] = {503: {"description": "Busy: retry after the `Retry-After` seconds"}}
LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"description": "Too many questions from this client"},
    422: {"description": "Invalid question"},
}


@router.post("/ask", response_model=AskResponse, dependencies=[RateLimited], responses={**BUSY, **LIMITED})
async def ask(body: AskRequest, kiosk: KioskDep, records: RecordsDep, deadline: DeadlineDep) -> AskResponse:
    """Answer a question: staff FAQ, then the relevance gate, then a curated or a generated answer."""
    return to_response(await answer_question(kiosk, records, body.question, body.session_id, deadline=deadline))


@router.post(
    "/ask/stream",
    dependencies=[RateLimited],
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "`delta` events with text, then one `done` event with the metadata"},
               **BUSY, **LIMITED},
)  # fmt: skip
async def ask_stream(body: AskRequest, kiosk: KioskDep, records: RecordsDep, deadline: DeadlineDep) -> EventStream:
    """Server-Sent Events: the answer's text as it is generated, then a final event with the metadata."""
    refuse_when_full(kiosk)

    async def events() -> AsyncIterator[str]:
        run = lambda on_text: answer_question(kiosk, records, body.question, body.session_id, on_text,  # noqa: E731
                                              deadline=deadline)  # fmt: skip
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


@router.post("/classify", response_model=ClassifyResponse, dependencies=[RateLimited], responses=LIMITED)
async def classify(body: ClassifyRequest, services: ServicesDep) -> ClassifyResponse:
    """The relevance gate alone: is the question about Ho Chi Minh?"""
    score = services.gate.relevance(body.question)
    return ClassifyResponse(related=score >= services.gate.threshold, relevance=round(score, 4))


@router.post("/feedback", status_code=201, dependencies=[RateLimited],
             responses={404: {"description": "Unknown request_id"}})  # fmt: skip
async def feedback(body: FeedbackRequest, records: RecordsDep) -> dict[str, bool]:
    """Record whether an answer helped (and an optional comment)."""
    if not await run_in_threadpool(records.add_feedback, body.request_id, body.helpful, body.comment):
        raise HTTPException(404, "unknown request_id")
    return {"recorded": True}
