"""The kiosk page (server-rendered shell; the answer is fetched and streamed by static/kiosk.js)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.api.deps import SettingsDep
from app.strings import PAGE_LANGUAGES, STRINGS, strings, suggestions

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def kiosk_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    language = settings.ui_language
    config = {
        "defaultLanguage": language,
        # every language's strings: the page writes some replies itself (errors) in the visitor's language
        "strings": STRINGS,
        "suggestions": {code: suggestions(code) for code in PAGE_LANGUAGES},
        "idleResetSeconds": settings.idle_reset_s,
    }
    return request.app.state.templates.TemplateResponse(
        request,
        "kiosk.html",
        {
            "lang": language,
            "t": strings(language),
            "suggestions": suggestions(language),
            "page_languages": {code: strings(code)["language_name"] for code in PAGE_LANGUAGES},
            "config_json": json.dumps(config, ensure_ascii=False).replace("</", "<\\/"),
        },
    )
