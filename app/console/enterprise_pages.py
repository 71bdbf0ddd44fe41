"""The enterprise's pages: its requests, filing a new one, its plan (一企一策), rating help."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from app.assignments import service as assignment_service
from app.assignments.schemas import FeedbackCreate
from app.common.pagination import PageParams, decode_cursor
from app.common.types import PathId
from app.console import i18n
from app.console import repository as console_repository
from app.console.forms import Invalid, attempt, clean, parse
from app.console.web import Ctx, FormData, PageCtx, redirect
from app.enterprises import service as enterprise_service
from app.models import AssignmentStatus, Plan, PlanStatus, Role
from app.plans import service as plan_service
from app.requests import repository as request_repository
from app.requests import service as request_service
from app.requests.schemas import HelpRequestCreate

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20
# The form says ``wanted_by`` (what people read); the API's field is ``wanted_by_date``.
REQUEST_RENAME = {"wanted_by_date": "wanted_by"}


@router.get("/enterprise")
def enterprise_home(ctx: PageCtx, cursor: str | None = None) -> Response:
    principal = ctx.need(Role.ENTERPRISE)
    enterprise = enterprise_service.get(
        ctx.session, principal=principal, enterprise_id=principal.enterprise_id or 0
    )
    page = request_service.list_(
        ctx.session,
        principal=principal,
        filters=request_repository.RequestFilter(),
        page=PageParams(limit=PAGE_SIZE, after_id=decode_cursor(cursor) if cursor else None),
    )
    return ctx.render("enterprise/home.html", enterprise=enterprise, page=page)


def _request_form(ctx: Ctx, values: dict[str, str], errors: dict[str, str]) -> Response:
    urgencies = [(str(u), ctx._(i18n.LABELS["urgency"][str(u)])) for u in range(1, 6)]
    categories = sorted(ctx.category_names().items(), key=lambda item: item[1])
    return ctx.render(
        "enterprise/new_request.html",
        values=values,
        errors=errors,
        urgencies=urgencies,
        categories=categories,
        team_sizes=[(str(n), str(n)) for n in range(1, 6)],
    )


@router.get("/enterprise/requests/new")
def new_request(ctx: PageCtx) -> Response:
    ctx.need(Role.ENTERPRISE)
    return _request_form(ctx, {"urgency": "3", "providers_wanted": "1"}, {})


@router.post("/enterprise/requests/new")
def file_request(ctx: PageCtx, values: FormData) -> Response:
    """The API's schema and ``request_service.create``; errors come back beside the field."""
    principal = ctx.need(Role.ENTERPRISE)
    body: dict[str, Any] = clean(
        {
            k: values.get(k, "")
            for k in ("title", "description", "category", "urgency", "providers_wanted")
        }
    )
    if values.get("wanted_by"):
        body["wanted_by_date"] = values["wanted_by"]
    try:
        data = parse(HelpRequestCreate, body, rename=REQUEST_RENAME)
        created = attempt(
            ctx.session,
            lambda: request_service.create(ctx.session, principal=principal, data=data),
            rename=REQUEST_RENAME,
        )
    except Invalid as exc:
        return _request_form(ctx, values, exc.errors)
    ctx.flash(ctx._("Your request was filed: {title}").format(title=created.title))
    return redirect("/enterprise")


def current_plan(ctx: Ctx) -> Plan | None:
    """The open plan (one per enterprise), else the most recent closed one."""
    principal = ctx.need()
    plans = list(plan_service.list_(ctx.session, principal=principal, status=None))
    open_plans = [p for p in plans if p.status != PlanStatus.CLOSED]
    chosen = open_plans or plans
    return chosen[-1] if chosen else None


@router.get("/enterprise/plan")
def plan_page(ctx: PageCtx) -> Response:
    return _plan(ctx, {}, {})


def _plan(ctx: Ctx, values: dict[str, str], errors: dict[str, str]) -> Response:
    principal = ctx.need(Role.ENTERPRISE)
    plan = current_plan(ctx)
    if plan is None:
        return ctx.render("enterprise/plan.html", plan=None)
    detail = plan_service.detail(ctx.session, plan)
    assignments = detail["assignments"]
    ids = [a.id for a in assignments]
    return ctx.render(
        "enterprise/plan.html",
        plan=plan,
        detail=detail,
        providers=console_repository.providers_by_id(
            ctx.session,
            principal,
            (a.provider_id for a in assignments),
        ),
        rated=console_repository.rated_assignment_ids(ctx.session, principal, ids),
        completed=AssignmentStatus.COMPLETED,
        values=values,
        errors=errors,
    )


@router.post("/enterprise/assignments/{assignment_id}/rate")
def rate(ctx: PageCtx, assignment_id: PathId, values: FormData) -> Response:
    principal = ctx.need(Role.ENTERPRISE)
    body: dict[str, Any] = clean(
        {k: values.get(k, "") for k in ("rating", "comment")}, keep_empty=("comment",)
    )
    if values.get("satisfied") in ("yes", "no"):
        body["satisfied"] = values["satisfied"] == "yes"
    try:
        data = parse(FeedbackCreate, body)
        assignment = assignment_service.get(
            ctx.session, principal=principal, assignment_id=assignment_id
        )
        attempt(
            ctx.session,
            lambda: assignment_service.rate(
                ctx.session, principal=principal, assignment=assignment, data=data
            ),
        )
    except Invalid as exc:
        errors = {f"{assignment_id}.{k}": v for k, v in exc.errors.items()}
        return _plan(ctx, {f"{assignment_id}.{k}": v for k, v in values.items()}, errors)
    ctx.flash(ctx._("Thank you for your feedback."))
    return redirect("/enterprise/plan")
