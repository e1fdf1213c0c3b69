"""Serve the kiosk: `python -m app` (what `make serve` and the container run).

Settings come from KIOSK_* environment variables or `.env` (see the README); PORT is honoured too.
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from app.settings import get_settings


class DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT, readiness turns 503 at once; uvicorn then finishes in-flight answers and exits."""

    def handle_exit(self, sig: int, frame: object) -> None:
        app = self.config.loaded_app
        while hasattr(app, "app"):  # unwrap uvicorn's middleware to reach the FastAPI app
            app = app.app
        if hasattr(app, "state"):
            app.state.draining = True
        super().handle_exit(sig, frame)  # type: ignore[arg-type]


def main() -> int:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from app.main import create_app

    config = uvicorn.Config(
        create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level,
        access_log=False,  # access logs would carry visitors' addresses
        timeout_graceful_shutdown=int(settings.request_timeout_s) + 5, lifespan="on",
    )  # fmt: skip
    server = DrainingServer(config)
    server.run()
    # uvicorn returns normally when the lifespan fails; make that a non-zero exit for supervisors.
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
