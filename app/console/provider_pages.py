"""An expert's or platform's pages: the inbox of offers and work, follow-ups, the profile."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from app.assignments import service as assignment_service
from app.assignments.schemas import Decline
from app.common.concurrency import check_if_match
from app.common.principal import Principal
from app.common.types import PathId
from app.console import i18n
from app.console import repository as console_repository
from app.console.forms import Invalid, attempt, clean, parse, version_read
from app.console.web import Ctx, FormData, PageCtx, redirect
from app.models import Assignment, AssignmentStatus, FollowUpKind, Role
from app.plans import service as plan_service
from app.plans.schemas import FollowUpCreate
from app.providers import service as provider_service
from app.providers.schemas import ProviderUpdate
from app.requests import service as request_service
from app.settings import Settings

router = APIRouter(include_in_schema=False)
PROVIDERS = (Role.EXPERT, Role.PLATFORM)
INBOX_LIMIT = 100
SHOWN = (
    AssignmentStatus.OFFERED,
    AssignmentStatus.ACCEPTED,
    AssignmentStatus.ACTIVE,
    AssignmentStatus.COMPLETED,
)
PROFILE_TEXT = ("name", "organisation", "expertise", "contact_email", "contact_phone")
PROFILE_OPTIONAL = ("capacity", "paused_from_date", "paused_until_date")


def _inbox(ctx: Ctx, values: dict[str, str], errors: dict[str, str]) -> Response:
    principal = ctx.need(*PROVIDERS)
    rows = console_repository.assignments_of_provider(
        ctx.session, principal, [s.value for s in SHOWN], INBOX_LIMIT
    )
    requests = console_repository.requests_by_id(
        ctx.session, principal, (a.request_id for a in rows)
    )
    enterprises = console_repository.enterprises_by_id(
        ctx.session, principal, (r.enterprise_id for r in requests.values())
    )
    work_ids = [a.request_id for a in rows if a.status != AssignmentStatus.COMPLETED]
    return ctx.render(
        "provider/inbox.html",
        milestones=plan_service.provider_milestones(
            ctx.session, provider_id=principal.provider_id or 0, request_ids=work_ids
        ),
        offers=[a for a in rows if a.status == AssignmentStatus.OFFERED],
        work=[a for a in rows if a.status in (AssignmentStatus.ACCEPTED, AssignmentStatus.ACTIVE)],
        done=[a for a in rows if a.status == AssignmentStatus.COMPLETED],
        requests=requests,
        enterprises=enterprises,
        decline_reasons=_choices(ctx, "decline_reason"),
        follow_up_kinds=_choices(ctx, "follow_up_kind", [k.value for k in FollowUpKind]),
        values=values,
        errors=errors,
    )


def _choices(ctx: Ctx, vocabulary: str, keys: list[str] | None = None) -> list[tuple[str, str]]:
    labels = i18n.LABELS[vocabulary]
    return [(k, ctx._(labels[k])) for k in (keys or list(labels))]


@router.get("/provider")
def inbox(ctx: PageCtx) -> Response:
    return _inbox(ctx, {}, {})


def _mine(ctx: Ctx, assignment_id: int) -> tuple[Principal, Assignment]:
    principal = ctx.need(*PROVIDERS)
    return principal, assignment_service.get(
        ctx.session, principal=principal, assignment_id=assignment_id
    )


def _refused(ctx: Ctx, assignment_id: int, values: dict[str, str], exc: Invalid) -> Response:
    prefixed = {f"{assignment_id}.{k}": v for k, v in values.items()}
    return _inbox(ctx, prefixed, {f"{assignment_id}.{k}": v for k, v in exc.errors.items()})


@router.post("/provider/assignments/{assignment_id}/accept")
def accept(ctx: PageCtx, assignment_id: PathId) -> Response:
    principal, assignment = _mine(ctx, assignment_id)
    try:
        attempt(
            ctx.session,
            lambda: assignment_service.accept(
                ctx.session, principal=principal, assignment=assignment
            ),
        )
    except Invalid as exc:
        return _refused(ctx, assignment_id, {}, exc)
    ctx.flash(ctx._("Offer accepted."))
    return redirect("/provider")


@router.post("/provider/milestones/{milestone_id}/{action}")
def tick_milestone(ctx: PageCtx, milestone_id: PathId, action: str, values: FormData) -> Response:
    """Tick one of my steps off (or reopen it), against the version the page showed."""
    principal = ctx.need(*PROVIDERS)
    if action not in ("done", "reopen"):
        return redirect("/provider")
    version = values.get("version", "")
    try:
        attempt(
            ctx.session,
            lambda: plan_service.tick_milestone(
                ctx.session,
                principal=principal,
                milestone_id=milestone_id,
                done=action == "done",
                version=int(version) if version.isdigit() else None,
            ),
        )
    except Invalid as exc:
        return _inbox(ctx, {}, {f"milestone{milestone_id}": "; ".join(exc.errors.values())})
    ctx.flash(ctx._("Saved."))
    return redirect("/provider")


@router.post("/provider/assignments/{assignment_id}/decline")
def decline(ctx: PageCtx, assignment_id: PathId, values: FormData) -> Response:
    principal, assignment = _mine(ctx, assignment_id)
    try:
        data = parse(Decline, clean({k: values.get(k, "") for k in ("reason_code", "reason")}))
        attempt(
            ctx.session,
            lambda: assignment_service.decline(
                ctx.session, principal=principal, assignment=assignment, data=data
            ),
        )
    except Invalid as exc:
        return _refused(ctx, assignment_id, values, exc)
    ctx.flash(ctx._("Offer declined; the request will be offered to the next provider shortly."))
    return redirect("/provider")


def _log(ctx: Ctx, principal: Principal, assignment: Assignment, body: dict[str, Any]) -> None:
    """A follow-up on the request's plan, through the API's schema and service."""
    data = parse(FollowUpCreate, {**body, "assignment_id": assignment.id})
    request = request_service.get(
        ctx.session, principal=principal, request_id=assignment.request_id
    )
    plan = plan_service.get(ctx.session, principal=principal, plan_id=request.plan_id or 0)
    plan_service.log_follow_up(ctx.session, principal=principal, plan=plan, data=data)


@router.post("/provider/assignments/{assignment_id}/follow-up")
def follow_up(ctx: PageCtx, assignment_id: PathId, values: FormData) -> Response:
    principal, assignment = _mine(ctx, assignment_id)
    fields = ("kind", "notes", "progress", "next_follow_up_date")
    body = clean({k: values.get(k, "") for k in fields})
    try:
        attempt(ctx.session, lambda: _log(ctx, principal, assignment, body))
    except Invalid as exc:
        return _refused(ctx, assignment_id, values, exc)
    ctx.flash(ctx._("Follow-up logged."))
    return redirect("/provider")


@router.post("/provider/assignments/{assignment_id}/complete")
def complete(ctx: PageCtx, assignment_id: PathId, values: FormData) -> Response:
    """The summary is kept on the assignment (and as a closing note on the plan), then the
    work is marked complete."""
    principal, assignment = _mine(ctx, assignment_id)
    summary = values.get("summary", "")

    def finish() -> None:
        if summary:
            _log(ctx, principal, assignment, {"kind": "note", "notes": summary, "progress": 100})
        assignment_service.complete(
            ctx.session, principal=principal, assignment=assignment, summary=summary[:2000]
        )

    try:
        attempt(ctx.session, finish)
    except Invalid as exc:
        errors = Invalid({"summary" if k == "notes" else k: v for k, v in exc.errors.items()})
        return _refused(ctx, assignment_id, values, errors)
    ctx.flash(ctx._("Marked complete; the enterprise is asked to rate it."))
    return redirect("/provider")


def _profile(ctx: Ctx, values: dict[str, str], errors: dict[str, str]) -> Response:
    principal = ctx.need(*PROVIDERS)
    provider = provider_service.get(
        ctx.session, principal=principal, provider_id=principal.provider_id or 0
    )
    if not values:
        values = {k: str(getattr(provider, k) or "") for k in (*PROFILE_TEXT, *PROFILE_OPTIONAL)}
        values |= {f"skill_{k}": str(v) for k, v in provider.skills.items()}
        values |= {
            "remote_ok": "on" if provider.remote_ok else "",
            "version": str(provider.version),
        }
    return ctx.render(
        "provider/profile.html",
        provider=provider,
        values=values,
        errors=errors,
        categories=sorted(ctx.category_names().items(), key=lambda item: item[1]),
    )


@router.get("/provider/profile")
def profile(ctx: PageCtx) -> Response:
    return _profile(ctx, {}, {})


@router.post("/provider/profile")
def save_profile(ctx: PageCtx, values: FormData) -> Response:
    principal = ctx.need(*PROVIDERS)
    settings: Settings = ctx.request.app.state.settings
    body: dict[str, Any] = {k: values.get(k, "") for k in PROFILE_TEXT}
    body |= {k: values.get(k) or None for k in PROFILE_OPTIONAL}
    body["capacity"] = body["capacity"] or 0
    body["remote_ok"] = values.get("remote_ok") == "on"
    body["skills"] = {
        k.removeprefix("skill_"): v for k, v in values.items() if k.startswith("skill_") and v
    }
    try:
        data = parse(ProviderUpdate, body, rename={"skills": "skills"})
        provider = provider_service.get(
            ctx.session, principal=principal, provider_id=principal.provider_id or 0
        )

        def save() -> None:
            check_if_match(version_read(values), provider.version)
            provider_service.update(
                ctx.session,
                principal=principal,
                provider=provider,
                data=data,
                capacity_ceiling=settings.capacity_ceiling(provider.kind.value),
            )

        attempt(ctx.session, save, rename={"If-Match": ""})
    except Invalid as exc:
        return _profile(ctx, values, exc.errors)
    ctx.flash(ctx._("Profile saved."))
    return redirect("/provider/profile")
