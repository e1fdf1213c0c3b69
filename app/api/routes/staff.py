"""Staff routes, behind the X-API-Key header."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from app.api.deps import RateLimited, RecordsDep, StaffOnly
from app.api.errors import LIMITED, error_response

# The rate limit comes first, so that it also slows down anyone guessing the key.
router = APIRouter(
    prefix="/api/v1/staff",
    tags=["staff"],
    dependencies=[RateLimited, StaffOnly],
    responses={401: error_response("Missing or wrong X-API-Key"), **LIMITED},
)


@router.get("/stats")
async def stats(records: RecordsDep) -> dict[str, Any]:
    """Questions per day, share related, routes, latency percentiles and feedback counts."""
    return await run_in_threadpool(records.stats)


# response_class: only for the schema (a CSV 200, and errors declared as JSON)
@router.get(
    "/feedback.csv", response_class=Response, responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}
)
async def feedback_csv(records: RecordsDep) -> PlainTextResponse:
    """Every feedback row with its request's route."""
    body = await run_in_threadpool(records.feedback_csv)
    return PlainTextResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="feedback.csv"'},
    )
