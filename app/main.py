"""The FastAPI application: lifespan, middleware, static files and routers; nothing else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.deps import ArrivalMiddleware
from app.api.routes import ask, health, kiosk, openai_compat, staff
from app.pipeline import Services
from app.records import Records
from app.security import BodyLimitMiddleware, RateLimiter, SecurityHeadersMiddleware
from app.services import load_services
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent


async def _http_error(request: Request, exc: Exception) -> Response:
    """A body that is not UTF-8 JSON is bad input like any other: 422, not FastAPI's bare 400."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and "parsing the body" in str(exc.detail):
        return JSONResponse({"detail": "the request body must be UTF-8 encoded JSON"}, status_code=422)
    return await http_exception_handler(request, exc)


def create_app(settings: Settings | None = None, loader: Callable[[Settings], Services] = load_services) -> FastAPI:
    """`loader` builds the services in the lifespan; tests pass one that returns fakes."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.records = Records(settings.db_path, settings.store_questions)
        try:
            app.state.services = await run_in_threadpool(loader, settings)
        except Exception:
            log.exception("start-up failed")
            app.state.records.close()
            raise
        if not settings.staff_api_key.get_secret_value():
            log.warning("KIOSK_STAFF_API_KEY is not set: staff routes answer 401")
        log.info("ready on http://%s:%d", settings.host, settings.port)
        yield
        app.state.draining = True
        worker = app.state.services.worker
        if worker is not None:
            await run_in_threadpool(worker.stop)
        app.state.records.close()

    app = FastAPI(
        title="Ho Chi Minh Museum kiosk",
        version="0.1.0",
        description="Answers visitors' questions about Ho Chi Minh; off-topic questions are refused without "
        "generation. Staff routes need the `X-API-Key` header.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.services = None
    app.state.draining = False
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.templates = Jinja2Templates(directory=ROOT / "templates")
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(ArrivalMiddleware)  # the outermost: a request's deadline counts from here
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    for module in (health, ask, staff, openai_compat, kiosk):
        app.include_router(module.router)
    return app
