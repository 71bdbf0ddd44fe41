"""Use cases on assignments: offers answered, work completed, pairs pinned or re-assigned.

Every status change is a compare-and-set ``UPDATE ... WHERE status IN (allowed sources)``
with a row-count check, so of two racing clicks exactly one wins and the other gets 409
(measured on PostgreSQL: a read-check-write version gave 500s under concurrency).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Select, Update, bindparam, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.assignments import offers, rematch_queue, repository, rules
from app.assignments import rematch as rematch_service
from app.assignments.lifecycle import move
from app.assignments.schemas import (
    Decline,
    FeedbackCreate,
    ManualAssign,
    Reassign,
)
from app.assignments.transitions import OPEN
from app.assignments.views import AssignmentView, assignment_view_model
from app.bundling import service as bundling
from app.common.clock import as_utc, utc_now
from app.common.locking import lock_assignment_path
from app.common.pagination import PageParams, paginate_shaped, schema_columns
from app.common.principal import Principal
from app.common.schemas import Page
from app.common.shapes import Param
from app.enterprises.repository import region_of
from app.errors import Conflict, Forbidden, NotFound
from app.events import service as event_service
from app.models import (
    Assignment,
    AssignmentOrigin,
    AssignmentStatus,
    Feedback,
    HelpRequest,
    RequestStatus,
    table_of,
)


def get(session: Session, *, principal: Principal, assignment_id: int) -> Assignment:
    if principal.is_provider:
        found = session.scalar(
            repository.ONE_OF_PROVIDER,
            {"assignment_id": assignment_id, "provider_id": principal.provider_id},
        )
    else:
        found = session.scalar(repository.one_visible_to(principal, assignment_id))
    if found is None:
        raise NotFound(f"assignment {assignment_id} not found")
    return found


def list_(
    session: Session,
    *,
    principal: Principal,
    filters: repository.AssignmentFilter,
    page: PageParams,
) -> Page[AssignmentView]:
    def build(param: Param) -> Select[Any]:
        return repository.filtered(repository.visible_to(principal, param), filters, param)

    view = assignment_view_model(principal)
    columns = schema_columns(view, Assignment)
    convert = view.model_validate
    return paginate_shaped(
        session, principal, filters, build, Assignment.id, page, convert, columns=columns
    )


def _ensure_own(principal: Principal, assignment: Assignment) -> None:
    if not (principal.is_provider and principal.provider_id == assignment.provider_id):
        raise Forbidden("only the provider this was offered to may answer it")


def _set_request_status(
    session: Session, request_id: int, status: RequestStatus, **values: Any
) -> None:
    request = session.get(HelpRequest, request_id)
    if request is not None and request.status != status:
        request.status = status
        for key, value in values.items():
            setattr(request, key, value)
        session.flush()


@cache
def _request_update(keys: tuple[str, ...]) -> Update:
    """``_write_request``'s UPDATE for these columns, built once (bound ``v_`` + column)."""
    table = table_of(HelpRequest)
    return (
        sql_update(table)
        .where(table.c.id == bindparam("request_id"))
        .values(
            version=table.c.version + 1,
            updated_at=bindparam("v_updated_at"),
            **{key: bindparam(f"v_{key}") for key in keys},
        )
        .returning(table.c.version)
    )


def _write_request(session: Session, request: HelpRequest, **values: Any) -> None:
    """Write ``values`` to a request this transaction locked and loaded, in one Core UPDATE
    that bumps its version and ``updated_at`` as the ORM's flush would; the loaded copy takes
    them as its committed state. Why: the unit-of-work flush of this one row was ~15 % of
    the CPU an answer to an offer costs in its use case, and the lock makes the flush's
    version check moot (nobody else can have changed the row)."""
    now = utc_now()
    params = {f"v_{key}": value for key, value in values.items()}
    version = session.execute(
        _request_update(tuple(values)), {"request_id": request.id, "v_updated_at": now, **params}
    ).scalar_one()
    for key, value in (values | {"version": version, "updated_at": now}).items():
        set_committed_value(request, key, value)


def accept(session: Session, *, principal: Principal, assignment: Assignment) -> Assignment:
    _ensure_own(principal, assignment)
    now = utc_now()
    expires = assignment.offer_expires_at
    if (
        assignment.status == AssignmentStatus.OFFERED
        and expires is not None
        and as_utc(expires) < now
    ):
        raise Conflict("this offer has expired", field="offer_expires_at")
    request, region = lock_assignment_path(session, assignment)  # request before assignment
    move(
        session,
        assignment,
        to=AssignmentStatus.ACCEPTED,
        actor=principal,
        action="assignment.accepted",
        region_code=region,
        responded_at=now,
    )
    if request is None:
        return assignment
    # A team with an empty seat stays triaged (offers.team_status); a single provider's
    # request is in progress now that its one open assignment is accepted.
    solo = request.providers_wanted <= 1
    status = RequestStatus.IN_PROGRESS if solo else offers.team_status(session, request)
    if request.status != status:
        _write_request(session, request, status=status)
    return assignment


def decline(
    session: Session, *, principal: Principal, assignment: Assignment, data: Decline
) -> Assignment:
    """The pair is excluded and the request goes back to be re-matched: marked here, offered
    to the best runner-up by the worker within a poll (``rematch_queue``), so the provider's
    answer does not wait on the engine."""
    _ensure_own(principal, assignment)
    request, region = lock_assignment_path(session, assignment)  # request before assignment
    move(
        session,
        assignment,
        to=AssignmentStatus.DECLINED,
        actor=principal,
        action="assignment.declined",
        region_code=region,
        responded_at=utc_now(),
        decline_reason_code=data.reason_code,
        decline_reason=data.reason,
    )
    offers.exclude_pair(
        session,
        request_id=assignment.request_id,
        provider_id=assignment.provider_id,
        reason=f"declined: {data.reason_code} {data.reason}".strip(),
        actor=principal,
    )
    if request is not None and request.status != RequestStatus.TRIAGED:
        # The status and the re-match mark in one UPDATE (``rematch_queue.mark`` would be a
        # second), written by a statement: the loaded request stays clean, so nothing is
        # left for a unit-of-work flush.
        _write_request(session, request, status=RequestStatus.TRIAGED, **rematch_queue.new_mark())
    else:
        rematch_queue.mark(session, [assignment.request_id])
    return assignment


def complete(
    session: Session, *, principal: Principal, assignment: Assignment, summary: str = ""
) -> Assignment:
    """The provider marks the work done, saying what was done (kept on the assignment: the
    plan, the console and the exports show it)."""
    _ensure_own(principal, assignment)
    return move(
        session,
        assignment,
        to=AssignmentStatus.COMPLETED,
        actor=principal,
        action="assignment.completed",
        completed_at=utc_now(),
        completion_summary=summary,
    )


def set_lock(
    session: Session, *, principal: Principal, assignment: Assignment, locked: bool
) -> Assignment:
    """A locked (pinned) pair is kept by every later run and re-match."""
    _ensure_staff_of(session, principal, assignment)
    if assignment.status not in (AssignmentStatus.PROPOSED, *OPEN):
        raise Conflict(f"a {assignment.status.value} assignment cannot be pinned")
    before = event_service.snapshot(assignment)
    assignment.locked = locked
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="assignment.locked" if locked else "assignment.unlocked",
        entity=assignment,
        region_code=region_of(session, assignment),
        before=before,
    )
    return assignment


def _ensure_staff_of(session: Session, principal: Principal, assignment: Assignment) -> None:
    if not principal.covers_region(region_of(session, assignment)):
        raise Forbidden("only coordinators of the enterprise's region manage its assignments")


def _request_in_regions(session: Session, principal: Principal, request_id: int) -> HelpRequest:
    """The request staff offer by hand; 404 outside the caller's regions, as the requests'
    own role scoping answers staff (only staff reach here: routers and pages check the role).
    Read here rather than through app.requests, which builds on this package."""
    request = session.get(HelpRequest, request_id)
    if request is None or not principal.covers_region(region_of(session, request)):
        raise NotFound(f"help request {request_id} not found")
    return request


def assign_by_hand(session: Session, *, principal: Principal, data: ManualAssign) -> Assignment:
    request = _request_in_regions(session, principal, data.request_id)
    members = list(session.scalars(repository.open_for_request(request.id)))
    if len(members) >= request.providers_wanted:
        raise Conflict(
            "the request already has an open assignment; re-assign it instead"
            if request.providers_wanted == 1
            else f"the request's team is complete ({len(members)} of {request.providers_wanted})",
            field="request_id",
        )
    if any(m.provider_id == data.provider_id for m in members):
        raise Conflict("this provider already serves the request", field="provider_id")
    if request.status in (
        RequestStatus.RESOLVED,
        RequestStatus.WITHDRAWN,
        RequestStatus.UNRESOLVABLE,
    ):
        raise Conflict(f"the request is {request.status.value}", field="request_id")
    provider = offers.lock_provider(session, data.provider_id)
    verdict = rules.check_offer(
        session, request=request, provider=provider, override=tuple(data.override_rules)
    )
    assignment = offers.create_offer(
        session,
        request=request,
        provider=provider,
        origin=AssignmentOrigin.MANUAL,
        actor=principal,
        score=verdict.fit,
        breakdown=verdict.breakdown(data.note, data.override_reason),
    )
    if verdict.overridden:
        event_service.record(
            session,
            actor=principal,
            action="assignment.rules_overridden",
            entity=assignment,
            region_code=region_of(session, assignment),
            after={"rules": list(verdict.overridden), "reason": data.override_reason},
        )
    bundling.attach_requests(session, enterprise_id=request.enterprise_id, actor=principal)
    return assignment


def reassign(
    session: Session, *, principal: Principal, assignment: Assignment, data: Reassign
) -> Assignment | None:
    """Cancel the current pair and offer the request to a named provider, or to the best
    remaining one chosen by the engine. Returns the new offer (None if nobody qualifies)."""
    _ensure_staff_of(session, principal, assignment)
    if assignment.locked:
        raise Conflict("this pair is pinned; unlock it before re-assigning", field="locked")
    move(
        session,
        assignment,
        to=AssignmentStatus.CANCELLED,
        actor=principal,
        action="assignment.reassigned",
    )
    offers.exclude_pair(
        session,
        request_id=assignment.request_id,
        provider_id=assignment.provider_id,
        reason=f"re-assigned by coordinator: {data.reason}".strip(),
        actor=principal,
    )
    _set_request_status(session, assignment.request_id, RequestStatus.TRIAGED)
    if data.provider_id is None:
        new = rematch_service.rematch_requests(
            session, request_ids=[assignment.request_id], actor=principal
        )
        return new[0] if new else None
    return assign_by_hand(
        session,
        principal=principal,
        data=ManualAssign(
            request_id=assignment.request_id,
            provider_id=data.provider_id,
            note=data.reason,
            override_rules=data.override_rules,
            override_reason=data.override_reason,
        ),
    )


def _update_rating(session: Session, provider_id: int, rating: int) -> None:
    provider = offers.lock_provider(session, provider_id)
    count = provider.rating_count
    provider.rating = round(((provider.rating or 0.0) * count + rating) / (count + 1), 4)
    provider.rating_count = count + 1
    session.flush()


def rate(
    session: Session, *, principal: Principal, assignment: Assignment, data: FeedbackCreate
) -> Feedback:
    """The enterprise confirms completed help and rates it. Satisfied resolves the request;
    not satisfied reopens it for the worker to offer to someone else (this pair is excluded)."""
    request = session.get(HelpRequest, assignment.request_id)
    if request is None or not (
        principal.is_enterprise and principal.enterprise_id == request.enterprise_id
    ):
        raise Forbidden("only the enterprise that was helped rates the help")
    if assignment.status != AssignmentStatus.COMPLETED:
        raise Conflict(f"only completed help is rated; this is {assignment.status.value}")
    if session.scalar(select(Feedback.id).where(Feedback.assignment_id == assignment.id)):
        raise Conflict("this assignment is already rated")
    feedback = Feedback(
        assignment_id=assignment.id,
        author_id=principal.user_id,
        created_at=utc_now(),
        **data.model_dump(),
    )
    session.add(feedback)
    session.flush()
    _update_rating(session, assignment.provider_id, data.rating)
    event_service.record(
        session,
        actor=principal,
        action="assignment.rated",
        entity=feedback,
        region_code=region_of(session, assignment),
    )
    before = event_service.snapshot(request)
    if data.satisfied:
        request.status, request.resolved_at = RequestStatus.RESOLVED, utc_now()
        session.flush()
        event_service.record(
            session,
            actor=principal,
            action="request.resolved",
            entity=request,
            region_code=region_of(session, assignment),
            before=before,
        )
        bundling.refresh_status(session, request.plan_id, principal)
        return feedback
    request.status = RequestStatus.TRIAGED
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="request.reopened",
        entity=request,
        region_code=region_of(session, assignment),
        before=before,
    )
    offers.exclude_pair(
        session,
        request_id=request.id,
        provider_id=assignment.provider_id,
        reason="enterprise not satisfied",
        actor=principal,
    )
    rematch_queue.mark(session, [request.id])  # offered by the worker within a poll
    return feedback
