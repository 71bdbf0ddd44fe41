from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from app.common.concurrency import IfMatch, check_if_match, set_etag
from app.common.pagination import PageDep, PageInQuery
from app.common.principal import Principal
from app.common.schemas import Page, problem_responses
from app.common.types import PathId
from app.deps import CurrentPrincipal, DbSession, IdempotencyDep, OneHopRoute, Staff
from app.models import Milestone, Plan, PlanStatus
from app.plans import service as plan_service
from app.plans.schemas import (
    FollowUpCreate,
    FollowUpRead,
    MilestoneCreate,
    MilestoneRead,
    MilestoneUpdate,
    PlanDetail,
    PlanRead,
    PlanUpdate,
)
from app.plans.views import PlanDetailView, PlanView, plan_detail, plan_view

router = APIRouter(route_class=OneHopRoute, prefix="/plans", tags=["plans"])
EDIT_ERRORS = problem_responses(401, 403, 404, 409, 412, 428)


def get_plan(plan_id: PathId, session: DbSession, principal: CurrentPrincipal) -> Plan:
    return plan_service.get(session, principal=principal, plan_id=plan_id)


CurrentPlan = Annotated[Plan, Depends(get_plan)]


def _detail(
    session: DbSession, principal: Principal, plan: Plan, response: Response
) -> PlanDetailView:
    set_etag(response, plan.version)
    return plan_detail(session, principal, plan)


@router.get("", response_model=Page[PlanView], responses=problem_responses(401))
def list_plans(
    session: DbSession, principal: CurrentPrincipal, page: PageDep, status: PlanStatus | None = None
) -> Page[PlanView]:
    """Plans the caller may see, each in the caller's view, paged with the total."""
    return plan_service.list_page(
        session,
        principal=principal,
        status=status,
        page=page,
        convert=partial(plan_view, principal),
    )


@router.get("/{plan_id}", response_model=PlanDetailView, responses=problem_responses(401, 404))
def read_plan(
    plan_id: PathId, session: DbSession, principal: CurrentPrincipal, response: Response
) -> PlanDetailView:
    """The plan with its requests, assignments (with explanations), milestones, follow-ups;
    a provider reads only the parts of its own assignments."""
    # Loaded here, not through ``CurrentPlan``: a synchronous dependency is a worker-thread hop
    # of its own, and a read needs only the endpoint's (``OneHopRoute``).
    plan = plan_service.get(session, principal=principal, plan_id=plan_id)
    return _detail(session, principal, plan, response)


@router.patch("/{plan_id}", response_model=PlanDetail, responses=EDIT_ERRORS)
def update_plan(
    data: PlanUpdate,
    plan: CurrentPlan,
    session: DbSession,
    principal: Staff,
    response: Response,
    if_match: IfMatch = None,
) -> PlanDetailView:
    check_if_match(if_match, plan.version)
    plan_service.update(session, principal=principal, plan=plan, data=data)
    return _detail(session, principal, plan, response)


@router.post(
    "/{plan_id}/milestones",
    response_model=MilestoneRead,
    status_code=status.HTTP_201_CREATED,
    responses=EDIT_ERRORS,
)
def add_milestone(
    data: MilestoneCreate,
    plan: CurrentPlan,
    session: DbSession,
    principal: Staff,
    response: Response,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> object:
    if (replayed := idem.replay(data)) is not None:
        return replayed
    check_if_match(if_match, plan.version)
    milestone = plan_service.add_milestone(session, principal=principal, plan=plan, data=data)
    set_etag(response, plan.version)
    return idem.store(data, MilestoneRead.model_validate(milestone))


@router.patch(
    "/{plan_id}/milestones/{milestone_id}", response_model=MilestoneRead, responses=EDIT_ERRORS
)
def update_milestone(
    milestone_id: PathId,
    data: MilestoneUpdate,
    plan: CurrentPlan,
    session: DbSession,
    principal: Staff,
    response: Response,
    if_match: IfMatch = None,
) -> Milestone:
    check_if_match(if_match, plan.version)
    milestone = plan_service.update_milestone(
        session, principal=principal, plan=plan, milestone_id=milestone_id, data=data
    )
    set_etag(response, plan.version)
    return milestone


def _tick(
    session: DbSession,
    principal: Principal,
    plan: Plan,
    milestone_id: int,
    done: bool,
    response: Response,
    if_match: str | None,
) -> Milestone:
    milestone = plan_service.set_milestone_done(
        session,
        principal=principal,
        plan=plan,
        milestone_id=milestone_id,
        done=done,
        if_match=if_match,
    )
    set_etag(response, milestone.version)
    return milestone


@router.post(
    "/{plan_id}/milestones/{milestone_id}/done",
    response_model=MilestoneRead,
    responses=EDIT_ERRORS,
)
def mark_milestone_done(
    milestone_id: PathId,
    plan: CurrentPlan,
    session: DbSession,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> Milestone:
    """Tick a milestone off: the provider owning it or a coordinator of the region, with
    If-Match carrying the milestone's version (its ``version`` or ETag)."""
    return _tick(session, principal, plan, milestone_id, True, response, if_match)


@router.post(
    "/{plan_id}/milestones/{milestone_id}/reopen",
    response_model=MilestoneRead,
    responses=EDIT_ERRORS,
)
def reopen_milestone(
    milestone_id: PathId,
    plan: CurrentPlan,
    session: DbSession,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> Milestone:
    """Undo a tick (the same people, the same If-Match)."""
    return _tick(session, principal, plan, milestone_id, False, response, if_match)


@router.delete(
    "/{plan_id}/milestones/{milestone_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=EDIT_ERRORS,
)
def delete_milestone(
    milestone_id: PathId,
    plan: CurrentPlan,
    session: DbSession,
    principal: Staff,
    if_match: IfMatch = None,
) -> None:
    check_if_match(if_match, plan.version)
    plan_service.delete_milestone(
        session, principal=principal, plan=plan, milestone_id=milestone_id
    )


@router.get(
    "/{plan_id}/follow-ups",
    response_model=Page[FollowUpRead],
    responses=problem_responses(401, 404),
)
def list_follow_ups(
    plan: CurrentPlan,
    session: DbSession,
    principal: CurrentPrincipal,
    page_query: PageInQuery,
    request: Request,
) -> Page[FollowUpRead]:
    """The plan's follow-ups, paged with the total; a provider's list holds those on its own
    assignments only."""
    page = page_query.page(request)
    provider_id = principal.provider_id if principal.is_provider else None
    return plan_service.page_follow_ups(session, plan, provider_id=provider_id, page=page)


@router.post(
    "/{plan_id}/follow-ups",
    response_model=FollowUpRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409),
)
def log_follow_up(
    data: FollowUpCreate,
    plan: CurrentPlan,
    session: DbSession,
    principal: CurrentPrincipal,
    idem: IdempotencyDep,
) -> object:
    """Log a visit, call or note with progress and the next follow-up date."""
    if (replayed := idem.replay(data)) is not None:
        return replayed
    follow_up = plan_service.log_follow_up(session, principal=principal, plan=plan, data=data)
    return idem.store(data, FollowUpRead.model_validate(follow_up))


@router.post(
    "/{plan_id}/close", response_model=PlanRead, responses=problem_responses(401, 403, 404, 409)
)
def close_plan(plan: CurrentPlan, session: DbSession, principal: Staff) -> Plan:
    """Close the plan: only once each request is resolved, withdrawn or declared unresolvable."""
    return plan_service.close(session, principal=principal, plan=plan)
