"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Starting or draining"}})
async def readyz(request: Request) -> JSONResponse:
    """Models loaded and warmed, and not shutting down."""
    state = request.app.state
    if getattr(state, "draining", False):
        return JSONResponse({"status": "draining"}, status_code=503)
    if getattr(state, "services", None) is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format"}
    },
)
async def metrics(request: Request) -> Response:
    """Counters and histograms for Prometheus."""
    services = getattr(request.app.state, "services", None)
    if services is None:
        return Response(b"", media_type=CONTENT_TYPE_LATEST)
    if services.worker is not None:
        services.metrics.queue_depth.set(services.worker.depth)
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)
