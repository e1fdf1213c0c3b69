"""The API's documentation page: Swagger UI from the `swagger-ui-py` package, served by the app itself.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script; a kiosk has no internet
and the app's Content-Security-Policy allows neither. Here every file comes from this origin.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

SWAGGER_UI_FILES = Path(swagger_ui.__file__).parent / "static"  # swagger-ui's dist folder, with its LICENSE
ASSETS = "/docs/assets"

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
async def docs_page(request: Request) -> HTMLResponse:
    app = request.app
    return app.state.templates.TemplateResponse(
        request, "docs.html", {"title": app.title, "assets": ASSETS, "openapi_url": app.openapi_url}
    )
