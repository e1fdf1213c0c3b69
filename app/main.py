"""The FastAPI application: lifespan, middleware, static files and routers; nothing else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.answering import event_stream_response
from app.api.deps import ArrivalMiddleware
from app.api.errors import OPENAI_ERRORS, UnhandledErrorMiddleware, http_error, validation_error
from app.api.routes import ask, docs, health, kiosk, openai_compat, staff
from app.api.security import BodyLimitMiddleware, RateLimiter, SecurityHeadersMiddleware
from app.kiosk.pipeline import Services
from app.kiosk.services import load_services
from app.records import Records
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent


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
        docs_url=None,  # app.api.routes.docs serves it without a CDN
        redoc_url=None,  # ReDoc too would need a CDN; Swagger UI is enough
    )
    app.state.settings = settings
    app.state.services = None
    app.state.draining = False
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.templates = Jinja2Templates(directory=ROOT / "templates")
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    app.add_middleware(ArrivalMiddleware)  # a request's deadline counts from here
    app.add_middleware(UnhandledErrorMiddleware)  # around all the others: their faults too become a JSON 500
    app.add_middleware(SecurityHeadersMiddleware)  # added last, the outermost: on every response, a 500 too
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    app.mount(docs.ASSETS, StaticFiles(directory=docs.SWAGGER_UI_FILES), name="docs-assets")
    for module in (health, ask, staff, kiosk, docs):
        app.include_router(module.router)
    # The OpenAI route's errors and stream, declared here so that its module stays the OpenAI form alone.
    streamed = event_stream_response('With `"stream": true`: chunks, then `data: [DONE]`')
    app.include_router(openai_compat.router, responses={**OPENAI_ERRORS, **streamed})
    return app
