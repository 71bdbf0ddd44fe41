"""Match runs in the console: start one, watch it live, compare, adjust, publish, revert."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from app.assignments import service as assignment_service
from app.assignments.schemas import ManualAssign
from app.common.concurrency import check_if_match
from app.common.types import PathId
from app.console import repository as console_repository
from app.console.coordinator_pages import STAFF, page_params
from app.console.forms import Invalid, attempt, clean, parse
from app.console.web import Ctx, FormData, PageCtx, redirect
from app.exclusions import service as exclusion_service
from app.exclusions.schemas import ExclusionCreate
from app.match_runs import publishing
from app.match_runs import repository as match_run_repository
from app.match_runs import service as match_run_service
from app.match_runs.schemas import ChangeKind, MatchRunCreate, MatchRunRead
from app.models import MatchRun, MatchRunStatus

router = APIRouter(include_in_schema=False)
DIFF_PAGE = 50
DIFF_KINDS: dict[str, ChangeKind] = {
    "new": "new",
    "same": "same",
    "changed": "changed",
    "dropped": "dropped",
    "unmatched": "unmatched",
}
WITH_DRAFT = (MatchRunStatus.SUCCEEDED, MatchRunStatus.PUBLISHED, MatchRunStatus.REVERTED)


def _runs(ctx: Ctx, values: dict[str, str], errors: dict[str, str], cursor: str | None) -> Response:
    principal = ctx.need(*STAFF)
    page = match_run_service.list_(
        ctx.session,
        principal=principal,
        filters=match_run_repository.MatchRunFilter(),
        page=page_params(cursor),
    )
    return ctx.render(
        "coordinator/runs.html",
        page=page,
        regions=list(principal.region_prefixes),
        values=values or {"scope_region": next(iter(principal.region_prefixes), "")},
        errors=errors,
    )


@router.get("/coordinator/runs")
def runs(ctx: PageCtx, cursor: str | None = None) -> Response:
    return _runs(ctx, {}, {}, cursor)


@router.post("/coordinator/runs")
def start_run(ctx: PageCtx, values: FormData) -> Response:
    principal = ctx.need(*STAFF)
    try:
        data = parse(MatchRunCreate, {"scope_region": values.get("scope_region", "")})
        run = attempt(
            ctx.session,
            lambda: match_run_service.create(ctx.session, principal=principal, data=data),
        )
    except Invalid as exc:
        return _runs(ctx, values, exc.errors, None)
    return redirect(f"/coordinator/runs/{run.id}")


def _run(ctx: Ctx, run_id: int) -> MatchRun:
    principal = ctx.need(*STAFF)
    return match_run_service.get(ctx.session, principal=principal, run_id=run_id)


@router.get("/coordinator/runs/{run_id}")
def run_page(
    ctx: PageCtx, run_id: PathId, kind: str | None = None, cursor: str | None = None
) -> Response:
    return _run_page(ctx, run_id, kind, cursor, {})


def _run_page(
    ctx: Ctx, run_id: int, kind: str | None, cursor: str | None, errors: dict[str, str]
) -> Response:
    principal = ctx.need(*STAFF)
    run = _run(ctx, run_id)
    context: dict[str, Any] = {"run": MatchRunRead.model_validate(run), "errors": errors}
    if run.status in WITH_DRAFT:
        chosen = DIFF_KINDS.get(kind or "")
        diff = match_run_service.diff(
            ctx.session, run=run, kind=chosen, page=page_params(cursor, DIFF_PAGE)
        )
        request_ids = [row.request_id for row in diff.items]
        provider_ids = [
            p
            for row in diff.items
            for p in (row.live_provider_id, row.proposed_provider_id)
            if p is not None
        ]
        context |= {
            "diff": diff,
            "kind": chosen,
            "requests": console_repository.requests_by_id(ctx.session, principal, request_ids),
            "providers": console_repository.providers_by_id(ctx.session, principal, provider_ids),
        }
    return ctx.render("coordinator/run.html", **context)


@router.get("/coordinator/runs/{run_id}/progress")
def run_progress(ctx: PageCtx, run_id: PathId) -> Response:
    """Polled by htmx every second while the run is queued or running; then the page reloads."""
    run = _run(ctx, run_id)
    response = ctx.render("coordinator/run_progress.html", run=MatchRunRead.model_validate(run))
    if run.status not in match_run_repository.ACTIVE:
        response.headers["HX-Refresh"] = "true"
    return response


def _act(ctx: Ctx, run_id: int, action: Any, message: str) -> Response:
    try:
        attempt(ctx.session, action)
    except Invalid as exc:
        return _run_page(ctx, run_id, None, None, exc.errors)
    ctx.flash(message)
    return redirect(f"/coordinator/runs/{run_id}")


@router.post("/coordinator/runs/{run_id}/publish")
def publish(ctx: PageCtx, run_id: PathId, values: FormData) -> Response:
    principal, run = ctx.need(*STAFF), _run(ctx, run_id)

    def go() -> None:
        check_if_match(f'"{values.get("version", "")}"', run.version)
        publishing.publish(ctx.session, principal=principal, run=run)

    return _act(ctx, run_id, go, ctx._("Published: the offers are out."))


@router.post("/coordinator/runs/{run_id}/revert")
def revert(ctx: PageCtx, run_id: PathId, values: FormData) -> Response:
    principal, run = ctx.need(*STAFF), _run(ctx, run_id)

    def go() -> None:
        check_if_match(f'"{values.get("version", "")}"', run.version)
        publishing.revert(ctx.session, principal=principal, run=run)

    return _act(ctx, run_id, go, ctx._("Reverted: unanswered offers withdrawn."))


@router.post("/coordinator/runs/{run_id}/pin/{assignment_id}")
def pin(ctx: PageCtx, run_id: PathId, assignment_id: PathId, values: FormData) -> Response:
    principal = ctx.need(*STAFF)
    assignment = assignment_service.get(
        ctx.session, principal=principal, assignment_id=assignment_id
    )
    locked = values.get("locked", "true") == "true"
    return _act(
        ctx,
        run_id,
        lambda: assignment_service.set_lock(
            ctx.session, principal=principal, assignment=assignment, locked=locked
        ),
        ctx._("Pinned.") if locked else ctx._("Unpinned."),
    )


@router.post("/coordinator/runs/{run_id}/forbid")
def forbid(ctx: PageCtx, run_id: PathId, values: FormData) -> Response:
    principal = ctx.need(*STAFF)
    fields = ("provider_id", "request_id", "reason")
    try:
        data = parse(ExclusionCreate, clean({k: values.get(k, "") for k in fields}))
    except Invalid as exc:
        return _run_page(ctx, run_id, None, None, exc.errors)
    return _act(
        ctx,
        run_id,
        lambda: exclusion_service.forbid(ctx.session, principal=principal, data=data),
        ctx._("Pair forbidden; re-run to propose someone else."),
    )


@router.post("/coordinator/runs/{run_id}/assign")
def assign(ctx: PageCtx, run_id: PathId, values: FormData) -> Response:
    principal = ctx.need(*STAFF)
    fields = ("request_id", "provider_id", "note")
    try:
        data = parse(ManualAssign, clean({k: values.get(k, "") for k in fields}))
    except Invalid as exc:
        return _run_page(ctx, run_id, None, None, exc.errors)
    return _act(
        ctx,
        run_id,
        lambda: assignment_service.assign_by_hand(ctx.session, principal=principal, data=data),
        ctx._("Offered by hand."),
    )
