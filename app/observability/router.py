"""``GET /metrics``: Prometheus text, for an admin or the scraper's own bearer token."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from app.deps import PlainRouteDbSession, SettingsDep, api_key_scheme, oauth2_scheme, principal_from
from app.errors import Forbidden
from app.observability.collectors import (
    AdmissionCollector,
    CalendarCollector,
    DatabaseCollector,
)
from app.observability.metrics import REGISTRY

router = APIRouter(tags=["operations"])


def _scraper(token: str | None, expected: str | None) -> bool:
    return bool(token and expected and hmac.compare_digest(token, expected))


@router.get("/metrics", include_in_schema=False)
def metrics(
    request: Request,
    session: PlainRouteDbSession,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Response:
    """Not public: ``Authorization: Bearer $ZHUQI_METRICS_TOKEN`` (what Prometheus sends with
    ``authorization: {credentials: ...}``), or an administrator's token or API key."""
    expected = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if not _scraper(token, expected):
        principal, _key = principal_from(session, settings, token=token, api_key=api_key)
        if not principal.is_admin:
            raise Forbidden("metrics are for administrators and the metrics scraper")
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(DatabaseCollector(session, getattr(request.app.state, "engine", None)))
    scrape.register(CalendarCollector(settings.holiday_file))
    admission = getattr(request.app.state, "admission", None)
    if admission is not None:
        scrape.register(AdmissionCollector(admission))
    body = generate_latest(REGISTRY) + generate_latest(scrape)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
