"""A coordinator's triage queue, supervision board and provider list (scoped like the API)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from app.common.pagination import PageParams, decode_cursor
from app.common.schemas import StaffDecision
from app.common.types import PathId
from app.console import i18n
from app.console import repository as console_repository
from app.console.forms import Invalid, attempt, clean, parse
from app.console.web import Ctx, FormData, PageCtx, redirect
from app.models import ProviderKind, RequestStatus, Role, Vetting
from app.providers import repository as provider_repository
from app.providers import service as provider_service
from app.providers import vetting as vetting_service
from app.requests import repository as request_repository
from app.requests import service as request_service
from app.requests.schemas import HelpRequestUpdate
from app.supervision import pages as supervision_pages
from app.supervision import service as supervision_service

router = APIRouter(include_in_schema=False)
STAFF = (Role.COORDINATOR, Role.ADMIN)
PAGE_SIZE = 25
BOARD_ROWS = 100  # first rows of each overdue list; the heading shows the total
NOTIFICATIONS_SHOWN = 50


def page_params(cursor: str | None, limit: int = PAGE_SIZE) -> PageParams:
    return PageParams(limit=limit, after_id=decode_cursor(cursor) if cursor else None)


def _triage(
    ctx: Ctx, cursor: str | None, values: dict[str, str], errors: dict[str, str]
) -> Response:
    principal = ctx.need(*STAFF)
    page = request_service.list_(
        ctx.session,
        principal=principal,
        filters=request_repository.RequestFilter(status=RequestStatus.SUBMITTED),
        page=page_params(cursor),
    )
    enterprises = console_repository.enterprises_by_id(
        ctx.session, principal, (r.enterprise_id for r in page.items)
    )
    urgencies = [(str(u), ctx._(i18n.LABELS["urgency"][str(u)])) for u in range(1, 6)]
    return ctx.render(
        "coordinator/triage.html",
        page=page,
        enterprises=enterprises,
        urgencies=urgencies,
        categories=sorted(ctx.category_names().items(), key=lambda item: item[1]),
        values=values,
        errors=errors,
    )


@router.get("/coordinator")
def triage_queue(ctx: PageCtx, cursor: str | None = None) -> Response:
    return _triage(ctx, cursor, {}, {})


@router.post("/coordinator/requests/{request_id}/triage")
def triage(ctx: PageCtx, request_id: PathId, values: FormData) -> Response:
    """``request_service.triage`` with the API's update schema: check, correct, release."""
    principal = ctx.need(*STAFF)
    body: dict[str, Any] = clean({k: values.get(k, "") for k in ("category", "urgency")})
    try:
        data = parse(HelpRequestUpdate, body)
        request = request_service.get(ctx.session, principal=principal, request_id=request_id)
        attempt(
            ctx.session,
            lambda: request_service.triage(
                ctx.session, principal=principal, request=request, data=data
            ),
        )
    except Invalid as exc:
        prefixed = {f"{request_id}.{k}": v for k, v in values.items()}
        return _triage(ctx, None, prefixed, {f"{request_id}.{k}": v for k, v in exc.errors.items()})
    ctx.flash(ctx._("Request triaged: {title}").format(title=request.title))
    return redirect("/coordinator")


@router.get("/coordinator/supervision")
def supervision(ctx: PageCtx) -> Response:
    principal = ctx.need(*STAFF)
    first = PageParams(limit=BOARD_ROWS, after_id=None)
    cache: supervision_pages.BoardCache = ctx.request.app.state.board_cache
    board = supervision_pages.board(
        ctx.session, principal=principal, region=None, page=first, cache=cache
    )
    sent = supervision_service.notifications_for(ctx.session, principal=principal)
    return ctx.render(
        "coordinator/supervision.html", board=board, notifications=sent[:NOTIFICATIONS_SHOWN]
    )


def _providers(
    ctx: Ctx, q: str, kind: str, vetting: str, cursor: str | None, errors: dict[str, str]
) -> Response:
    principal = ctx.need(*STAFF)
    filters = provider_repository.ProviderFilter(
        kind=kind if kind in {k.value for k in ProviderKind} else None,
        q=q[:100] or None,
        vetting=Vetting(vetting) if vetting in {v.value for v in Vetting} else None,
    )
    page = provider_service.list_(
        ctx.session, principal=principal, filters=filters, page=page_params(cursor)
    )
    return ctx.render(
        "coordinator/providers.html", page=page, q=q, kind=kind, vetting=vetting, errors=errors
    )


@router.get("/coordinator/providers")
def providers(
    ctx: PageCtx, q: str = "", kind: str = "", vetting: str = "", cursor: str | None = None
) -> Response:
    return _providers(ctx, q, kind, vetting, cursor, {})


@router.post("/coordinator/providers/{provider_id}/vetting")
def vet(ctx: PageCtx, provider_id: PathId, values: FormData) -> Response:
    """Approve or reject a self-registered provider: ``vetting.decide``, the API's own rule."""
    principal = ctx.need(*STAFF)
    try:
        data = parse(StaffDecision, clean({k: values.get(k, "") for k in ("decision", "reason")}))
        provider = provider_service.get(ctx.session, principal=principal, provider_id=provider_id)
        attempt(
            ctx.session,
            lambda: vetting_service.decide(
                ctx.session, principal=principal, provider=provider, data=data
            ),
        )
    except Invalid as exc:
        errors = {f"{provider_id}.{k}": v for k, v in exc.errors.items()}
        return _providers(ctx, "", "", "pending", None, errors)
    ctx.flash(ctx._("Vetting recorded: {name}").format(name=provider.name))
    return redirect("/coordinator/providers?vetting=pending")
