"""Dependencies: how routes reach the loaded services, the settings and the protections.

They are `async def` because each does next to nothing: FastAPI runs a plain `def` dependency in its thread
pool, and under load that trip waits in a queue of its own.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from app.api.security import RateLimiter, api_key_matches
from app.kiosk.pipeline import Kiosk, Services
from app.records import Records
from app.settings import Settings


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_services(request: Request) -> Services:
    services = getattr(request.app.state, "services", None)
    if services is None:
        raise HTTPException(503, "the kiosk is starting", headers={"Retry-After": "5"})
    return services


async def get_kiosk(services: Annotated[Services, Depends(get_services)]) -> Kiosk:
    return Kiosk(services)


async def get_records(request: Request) -> Records:
    return request.app.state.records


ARRIVED = "kiosk.arrived"


class ArrivalMiddleware:
    """Notes when a request reached the service, before anything (body, dependencies, queues) made it wait."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope[ARRIVED] = time.monotonic()
        await self.app(scope, receive, send)


async def request_deadline(request: Request) -> float:
    """When the answer is due (time.monotonic()): counted from the request's arrival, so that waiting counts."""
    arrived = request.scope.get(ARRIVED, time.monotonic())
    return arrived + request.app.state.settings.request_timeout_s


def rate_limited(request: Request) -> None:
    """429 past the client's limit. A dependency only for routes without a body: FastAPI runs dependencies
    before it validates a body, so routes with one call this first thing instead, and a malformed request
    gets its 422 (and does not count)."""
    limiter: RateLimiter = request.app.state.rate_limiter
    limiter.check(request)


_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="Staff API key (KIOSK_STAFF_API_KEY)")


async def staff_only(request: Request, key: Annotated[str | None, Security(_api_key)]) -> None:
    if not api_key_matches(key, request.app.state.settings.staff_api_key.get_secret_value()):
        raise HTTPException(401, "a valid X-API-Key header is required", headers={"WWW-Authenticate": "APIKey"})


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
ServicesDep = Annotated[Services, Depends(get_services)]
KioskDep = Annotated[Kiosk, Depends(get_kiosk)]
RecordsDep = Annotated[Records, Depends(get_records)]
DeadlineDep = Annotated[float, Depends(request_deadline)]
RateLimited = Depends(rate_limited)
StaffOnly = Depends(staff_only)
