"""A coordinator's plans (一企一策): the plans of their regions, one plan's parts, and the
staff's hand on it (the summary in their own words, milestones ticked off, closing).

Every action is the API's own use case (``plan_service``), so the rules (region scope,
versions, "close only when every request is settled") are written once.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.common.types import PathId
from app.console import repository as console_repository
from app.console.coordinator_pages import STAFF, page_params
from app.console.forms import Invalid, attempt, parse, version_read
from app.console.web import Ctx, FormData, PageCtx, redirect
from app.models import AssignmentStatus, PlanStatus
from app.plans import service as plan_service
from app.plans.schemas import PlanUpdate

router = APIRouter(include_in_schema=False)
STATUSES = [s.value for s in PlanStatus]


@router.get("/coordinator/plans")
def plans(ctx: PageCtx, status: str = "", cursor: str | None = None) -> Response:
    principal = ctx.need(*STAFF)
    page = plan_service.list_page(
        ctx.session,
        principal=principal,
        status=PlanStatus(status) if status in STATUSES else None,
        page=page_params(cursor),
        convert=lambda plan: plan,
    )
    enterprises = console_repository.enterprises_by_id(
        ctx.session, principal, (p.enterprise_id for p in page.items)
    )
    return ctx.render(
        "coordinator/plans.html",
        page=page,
        enterprises=enterprises,
        status=status if status in STATUSES else "",
        statuses=STATUSES,
    )


def _plan_page(ctx: Ctx, plan_id: int, values: dict[str, str], errors: dict[str, str]) -> Response:
    principal = ctx.need(*STAFF)
    plan = plan_service.get(ctx.session, principal=principal, plan_id=plan_id)
    detail = plan_service.detail(ctx.session, plan)
    return ctx.render(
        "coordinator/plan.html",
        plan=plan,
        detail=detail,
        providers=console_repository.providers_by_id(
            ctx.session, principal, (a.provider_id for a in detail["assignments"])
        ),
        completed=AssignmentStatus.COMPLETED,
        staff=True,
        values=values,
        errors=errors,
    )


@router.get("/coordinator/plans/{plan_id}")
def plan_page(ctx: PageCtx, plan_id: PathId) -> Response:
    return _plan_page(ctx, plan_id, {}, {})


@router.post("/coordinator/plans/{plan_id}/summary")
def edit_summary(ctx: PageCtx, plan_id: PathId, values: FormData) -> Response:
    """The coordinator's words replace the generated summary; an empty form hands it back to
    the generator (the API's ``summary_edited: false``)."""
    principal = ctx.need(*STAFF)
    summary, summary_en = values.get("summary", "").strip(), values.get("summary_en", "").strip()
    body: dict[str, object] = (
        {"summary": summary, "summary_en": summary_en}
        if summary or summary_en
        else {"summary_edited": False}
    )
    try:
        data = parse(PlanUpdate, body)
        plan = plan_service.get(ctx.session, principal=principal, plan_id=plan_id)
        attempt(
            ctx.session,
            lambda: plan_service.update(ctx.session, principal=principal, plan=plan, data=data),
        )
    except Invalid as exc:
        return _plan_page(ctx, plan_id, values, exc.errors)
    ctx.flash(ctx._("Saved."))
    return redirect(f"/coordinator/plans/{plan_id}")


@router.post("/coordinator/plans/{plan_id}/milestones/{milestone_id}/{action}")
def tick_milestone(
    ctx: PageCtx, plan_id: PathId, milestone_id: PathId, action: str, values: FormData
) -> Response:
    """Tick a step off (or reopen it) against the version the page showed."""
    principal = ctx.need(*STAFF)
    if action not in ("done", "reopen"):
        return redirect(f"/coordinator/plans/{plan_id}")
    try:
        plan = plan_service.get(ctx.session, principal=principal, plan_id=plan_id)
        attempt(
            ctx.session,
            lambda: plan_service.set_milestone_done(
                ctx.session,
                principal=principal,
                plan=plan,
                milestone_id=milestone_id,
                done=action == "done",
                if_match=version_read(values),
            ),
        )
    except Invalid as exc:
        errors = {f"milestone{milestone_id}": "; ".join(exc.errors.values())}
        return _plan_page(ctx, plan_id, {}, errors)
    ctx.flash(ctx._("Saved."))
    return redirect(f"/coordinator/plans/{plan_id}")


@router.post("/coordinator/plans/{plan_id}/close")
def close(ctx: PageCtx, plan_id: PathId) -> Response:
    """Close the plan once every request in it is settled (the API's rule, its message)."""
    principal = ctx.need(*STAFF)
    try:
        plan = plan_service.get(ctx.session, principal=principal, plan_id=plan_id)
        attempt(
            ctx.session, lambda: plan_service.close(ctx.session, principal=principal, plan=plan)
        )
    except Invalid as exc:
        return _plan_page(ctx, plan_id, {}, {"close": "; ".join(exc.errors.values())})
    ctx.flash(ctx._("Plan closed."))
    return redirect(f"/coordinator/plans/{plan_id}")
