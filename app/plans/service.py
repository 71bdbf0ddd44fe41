"""One company, one policy (一企一策): the plan bundling an enterprise's requests, who helps,
which policies apply, milestones and follow-ups; closed only when every request is settled."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypedDict, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.assignments.lifecycle import move
from app.bundling import milestones, summaries
from app.bundling.service import touch, unsettled
from app.common.clock import utc_now
from app.common.concurrency import check_if_match
from app.common.locking import lock_in_order
from app.common.pagination import PageParams, paginate
from app.common.principal import Principal
from app.common.schemas import Page
from app.enterprises.repository import region_of
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.events import service as event_service
from app.models import (
    Assignment,
    AssignmentStatus,
    Enterprise,
    FollowUp,
    HelpRequest,
    Milestone,
    Plan,
    PlanStatus,
)
from app.plans import repository
from app.plans.schemas import (
    FollowUpCreate,
    FollowUpRead,
    MilestoneCreate,
    MilestoneUpdate,
    PlanUpdate,
)

T = TypeVar("T")


class PlanParts(TypedDict):
    """What :func:`detail` returns: the API views validate it, the console renders it."""

    enterprise: Enterprise | None
    requests: Sequence[HelpRequest]
    assignments: Sequence[Assignment]
    milestones: Sequence[Milestone]
    follow_ups: Sequence[FollowUp]


def get(session: Session, *, principal: Principal, plan_id: int) -> Plan:
    plan = session.scalar(repository.visible_to(principal).where(Plan.id == plan_id))
    if plan is None:
        raise NotFound(f"plan {plan_id} not found")
    return plan


def list_(session: Session, *, principal: Principal, status: PlanStatus | None) -> Sequence[Plan]:
    statement = repository.visible_to(principal).order_by(Plan.id)
    if status:
        statement = statement.where(Plan.status == status)
    return session.scalars(statement.limit(500)).all()


def list_page(
    session: Session,
    *,
    principal: Principal,
    status: PlanStatus | None,
    page: PageParams,
    convert: Callable[[Plan], T],
) -> Page[T]:
    """``list_`` paged with the total (``convert`` renders each plan for the caller)."""
    statement = repository.visible_to(principal)
    if status:
        statement = statement.where(Plan.status == status)
    return paginate(session, statement, Plan.id, page, convert, count=True)


def open_plan(session: Session, enterprise_id: int) -> Plan | None:
    return session.scalar(
        select(Plan).where(Plan.enterprise_id == enterprise_id, Plan.status != PlanStatus.CLOSED)
    )


def detail(session: Session, plan: Plan, *, provider_id: int | None = None) -> PlanParts:
    """The plan's parts; for a provider (``provider_id``) only those of its own assignments:
    the requests it serves, its assignments and the follow-ups logged on them."""
    requests = session.scalars(
        repository.plan_requests(plan, provider_id).order_by(HelpRequest.id)
    ).all()
    statement = select(Assignment).where(
        Assignment.request_id.in_([r.id for r in requests]),
        Assignment.status != AssignmentStatus.PROPOSED,
    )
    if provider_id is not None:
        statement = statement.where(Assignment.provider_id == provider_id)
    assignments = session.scalars(statement.order_by(Assignment.id)).all()
    steps = select(Milestone).where(Milestone.plan_id == plan.id)
    if provider_id is not None:  # the steps of the requests it serves
        steps = steps.where(Milestone.request_id.in_([r.id for r in requests]))
    found = session.scalars(
        steps.order_by(
            Milestone.due_date.is_(None), Milestone.due_date, Milestone.position, Milestone.id
        )
    ).all()
    return {
        "enterprise": session.get(Enterprise, plan.enterprise_id),
        "requests": requests,
        "assignments": assignments,
        "milestones": found,
        "follow_ups": follow_ups(session, plan, provider_id=provider_id),
    }


def _ensure_staff(session: Session, principal: Principal, plan: Plan) -> None:
    if not principal.covers_region(region_of(session, plan)):
        raise Forbidden("only coordinators of the enterprise's region edit its plan")
    if plan.status == PlanStatus.CLOSED:
        raise Conflict("the plan is closed")


def update(session: Session, *, principal: Principal, plan: Plan, data: PlanUpdate) -> Plan:
    """A coordinator's words replace the generated summary and stay (publishing no longer
    rewrites it); ``summary_edited: false`` hands the summary back to the generator."""
    _ensure_staff(session, principal, plan)
    before = event_service.snapshot(plan)
    if data.summary is not None:
        plan.summary, plan.summary_edited = data.summary, True
    if data.summary_en is not None:
        plan.summary_en, plan.summary_edited = data.summary_en, True
    if data.summary_edited is False and data.summary is None and data.summary_en is None:
        plan.summary_edited = False
    if event_service.snapshot(plan) == before:
        return plan  # nothing changed: no new version, no event
    touch(session, plan, principal, "plan.updated")
    if not plan.summary_edited:
        _regenerate(session, plan)
    return plan


def _lock_plan(session: Session, plan: Plan) -> None:
    """Enterprise, then plan, before a milestone row: the order publishing takes them in
    (it writes milestones under the enterprise lock, then the plan), so the two queue
    instead of deadlocking on PostgreSQL."""
    lock_in_order(session, enterprises=[plan.enterprise_id], plans=[plan.id])


def _regenerate(session: Session, plan: Plan) -> None:
    summaries.refresh(session, [plan.id])
    session.refresh(plan)


def add_milestone(
    session: Session, *, principal: Principal, plan: Plan, data: MilestoneCreate
) -> Milestone:
    _ensure_staff(session, principal, plan)
    milestone = Milestone(plan_id=plan.id, **data.model_dump())
    session.add(milestone)
    touch(session, plan, principal, "plan.milestone_added")
    _regenerate(session, plan)
    return milestone


def _milestone(session: Session, plan: Plan, milestone_id: int) -> Milestone:
    milestone = session.get(Milestone, milestone_id)
    if milestone is None or milestone.plan_id != plan.id:
        raise NotFound(f"milestone {milestone_id} not found")
    return milestone


def update_milestone(
    session: Session, *, principal: Principal, plan: Plan, milestone_id: int, data: MilestoneUpdate
) -> Milestone:
    _ensure_staff(session, principal, plan)
    _lock_plan(session, plan)
    milestone = _milestone(session, plan, milestone_id)
    before = event_service.snapshot(milestone)
    for key, value in data.model_dump(exclude_unset=True).items():
        if value is not None or key == "due_date":
            setattr(milestone, key, value)
    new_date = event_service.jsonable(milestone.due_date)
    if "due_date" in data.model_fields_set and new_date != before["due_date"]:
        # the coordinator's date (or their "no date") stands: the sweep no longer dates it
        milestone.due_from = milestone.due_workdays = None
    if data.done is not None and data.done != before["done"]:
        milestone.done_at = utc_now() if data.done else None
    if event_service.snapshot(milestone) == before:
        return milestone  # nothing changed: no new version, no event
    touch(session, plan, principal, "plan.milestone_updated")
    _regenerate(session, plan)
    return milestone


def set_milestone_done(
    session: Session,
    *,
    principal: Principal,
    plan: Plan,
    milestone_id: int,
    done: bool,
    if_match: str | None,
) -> Milestone:
    """Mark a milestone done (or reopen it): its provider owner or a coordinator of the
    region, against the milestone's version (If-Match). The generated summary's "next step"
    follows in the same transaction."""
    milestone = _milestone(session, plan, milestone_id)
    _ensure_may_tick(session, principal, plan, milestone)
    _lock_plan(session, plan)
    session.refresh(milestone)  # as of the lock: a concurrent tick has committed or waits
    check_if_match(if_match, milestone.version)
    if milestone.done == done:
        return milestone  # already so: no new version, no event
    before = event_service.snapshot(milestone)
    milestone.done, milestone.done_at = done, utc_now() if done else None
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="plan.milestone_done" if done else "plan.milestone_reopened",
        entity=milestone,
        region_code=region_of(session, plan),
        before=before,
    )
    summaries.refresh(session, [plan.id])
    return milestone


def tick_milestone(
    session: Session, *, principal: Principal, milestone_id: int, done: bool, version: int | None
) -> Milestone:
    """:func:`set_milestone_done` by the milestone's id alone (the provider's inbox)."""
    milestone = session.get(Milestone, milestone_id)
    if milestone is None:
        raise NotFound(f"milestone {milestone_id} not found")
    plan = get(session, principal=principal, plan_id=milestone.plan_id)
    return set_milestone_done(
        session,
        principal=principal,
        plan=plan,
        milestone_id=milestone_id,
        done=done,
        if_match=None if version is None else f'"{version}"',
    )


def provider_milestones(
    session: Session, *, provider_id: int, request_ids: Sequence[int]
) -> dict[int, list[Milestone]]:
    """request id → its provider steps, for the requests the provider holds open work on."""
    found: dict[int, list[Milestone]] = {}
    for milestone in session.scalars(repository.provider_steps(provider_id, request_ids)):
        found.setdefault(milestone.request_id or 0, []).append(milestone)
    return found


def _ensure_may_tick(
    session: Session, principal: Principal, plan: Plan, milestone: Milestone
) -> None:
    if plan.status == PlanStatus.CLOSED:
        raise Conflict("the plan is closed")
    if principal.is_provider:
        owns = milestone.owner_role == "provider" and milestones.is_serving(
            session, principal.provider_id or 0, milestone.request_id
        )
        if not owns:
            raise Forbidden("only the provider owning a milestone or a coordinator ticks it off")
        return
    if not principal.covers_region(region_of(session, plan)):
        raise Forbidden("only the milestone's provider or the region's coordinators tick it off")


def delete_milestone(
    session: Session, *, principal: Principal, plan: Plan, milestone_id: int
) -> None:
    _ensure_staff(session, principal, plan)
    _lock_plan(session, plan)
    session.delete(_milestone(session, plan, milestone_id))
    touch(session, plan, principal, "plan.milestone_deleted")
    _regenerate(session, plan)


def _follow_up_assignment(
    session: Session, principal: Principal, plan: Plan, assignment_id: int | None
) -> Assignment | None:
    if assignment_id is None:
        if principal.is_provider:
            raise InvalidInput(
                "providers log follow-ups against their assignment", field="assignment_id"
            )
        return None
    assignment = session.get(Assignment, assignment_id)
    request = session.get(HelpRequest, assignment.request_id) if assignment else None
    if assignment is None or request is None or request.plan_id != plan.id:
        raise NotFound(
            f"assignment {assignment_id} is not part of this plan", field="assignment_id"
        )
    if principal.is_provider and assignment.provider_id != principal.provider_id:
        raise Forbidden(
            "you can log follow-ups only on your own assignments", field="assignment_id"
        )
    if assignment.status not in (
        AssignmentStatus.ACCEPTED,
        AssignmentStatus.ACTIVE,
        AssignmentStatus.COMPLETED,
    ):
        raise Conflict(f"the assignment is {assignment.status.value}", field="assignment_id")
    return assignment


def log_follow_up(
    session: Session, *, principal: Principal, plan: Plan, data: FollowUpCreate
) -> FollowUp:
    """Providers log their visits and progress; the first one makes an accepted assignment active."""
    if not (principal.is_provider or principal.covers_region(region_of(session, plan))):
        raise Forbidden("only the plan's providers and coordinators log follow-ups")
    if plan.status == PlanStatus.CLOSED:
        raise Conflict("the plan is closed")
    assignment = _follow_up_assignment(session, principal, plan, data.assignment_id)
    now = utc_now()
    occurred = data.occurred_at or now
    if occurred.tzinfo is None:
        raise InvalidInput("occurred_at needs a time zone", field="occurred_at")
    if occurred > now:
        raise InvalidInput("occurred_at is in the future", field="occurred_at")
    follow_up = FollowUp(
        plan_id=plan.id,
        author_id=principal.user_id,
        created_at=now,
        **data.model_dump(exclude={"occurred_at"}),
        occurred_at=occurred,
    )
    session.add(follow_up)
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="plan.follow_up_logged",
        entity=follow_up,
        region_code=region_of(session, plan),
    )
    if assignment is not None and assignment.status == AssignmentStatus.ACCEPTED:
        move(
            session,
            assignment,
            to=AssignmentStatus.ACTIVE,
            actor=principal,
            action="assignment.activated",
        )
    return follow_up


def follow_ups(
    session: Session, plan: Plan, *, provider_id: int | None = None
) -> Sequence[FollowUp]:
    """The plan's follow-ups; a provider's view holds only those on its own assignments."""
    statement = repository.follow_ups_of(plan.id, provider_id)
    return session.scalars(statement.order_by(FollowUp.occurred_at, FollowUp.id)).all()


def page_follow_ups(
    session: Session, plan: Plan, *, provider_id: int | None, page: PageParams
) -> Page[FollowUpRead]:
    """The API's list of them: in the order they were logged, paged with the total."""
    statement = repository.follow_ups_of(plan.id, provider_id)
    return paginate(session, statement, FollowUp.id, page, FollowUpRead.model_validate, count=True)


def close(session: Session, *, principal: Principal, plan: Plan) -> Plan:
    _ensure_staff(session, principal, plan)
    open_ids = unsettled(session, plan)
    if open_ids:
        raise Conflict(
            f"requests {', '.join(map(str, open_ids))} are not yet resolved, withdrawn or "
            "declared unresolvable",
            open_requests=open_ids,
        )
    plan.status = PlanStatus.CLOSED
    plan.closed_at = utc_now()
    touch(session, plan, principal, "plan.closed")
    return plan
