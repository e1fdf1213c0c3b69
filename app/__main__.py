"""Serve the kiosk: `python -m app` (what `make serve` and the container run).

Settings come from KIOSK_* environment variables or `.env` (see the README); PORT is honoured too.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import uvicorn

from app.settings import Settings, get_settings


class DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT, readiness turns 503 at once; uvicorn then finishes in-flight answers and exits."""

    def handle_exit(self, sig: int, frame: object) -> None:
        app = self.config.loaded_app
        while hasattr(app, "app"):  # unwrap uvicorn's middleware to reach the FastAPI app
            app = app.app
        if hasattr(app, "state"):
            app.state.draining = True
        super().handle_exit(sig, frame)  # type: ignore[arg-type]


def server_config(app: Any, settings: Settings) -> uvicorn.Config:
    """uvicorn's settings for the app. uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise,
    which would let any local client pick its own address (and start a fresh rate limit): forwarded headers
    count only from the proxies named in KIOSK_TRUSTED_PROXIES."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,  # access logs would carry visitors' addresses
        timeout_graceful_shutdown=int(settings.request_timeout_s) + 5,
        lifespan="on",
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or "",
    )


def main() -> int:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from app.main import create_app

    server = DrainingServer(server_config(create_app(settings), settings))
    server.run()
    # uvicorn returns normally when the lifespan fails; make that a non-zero exit for supervisors.
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
