"""Forbidden pairs: coordinators rule a provider out for a request or a whole enterprise.

An exclusion is a hard rule for every later run and re-match; an open offer of that very
pair is withdrawn at once and the request goes back to be re-matched.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, false, or_, select
from sqlalchemy.orm import Session

from app.assignments import rematch_queue
from app.assignments.lifecycle import move
from app.common.clock import utc_now
from app.common.pagination import PageParams, paginate
from app.common.principal import Principal
from app.common.regions import region_clause
from app.common.schemas import Page
from app.enterprises import service as enterprise_service
from app.errors import Conflict, NotFound
from app.events import service as event_service
from app.exclusions.schemas import ExclusionCreate, ExclusionRead
from app.models import (
    Assignment,
    AssignmentStatus,
    Enterprise,
    Exclusion,
    HelpRequest,
    Provider,
    RequestStatus,
)
from app.requests import service as request_service


def visible_to(principal: Principal) -> Select[Exclusion]:
    """Staff see exclusions of enterprises (or requests of enterprises) in their regions."""
    enterprise_of_request = (
        select(HelpRequest.enterprise_id)
        .where(HelpRequest.id == Exclusion.request_id)
        .scalar_subquery()
    )
    statement = select(Exclusion).join(
        Enterprise,
        or_(Enterprise.id == Exclusion.enterprise_id, Enterprise.id == enterprise_of_request),
    )
    if principal.is_admin:
        return statement
    if principal.is_coordinator:
        return statement.where(region_clause(Enterprise.region_code, principal.region_prefixes))
    return statement.where(false())


def list_(
    session: Session, *, principal: Principal, provider_id: int | None
) -> Sequence[Exclusion]:
    statement = visible_to(principal).order_by(Exclusion.id)
    if provider_id is not None:
        statement = statement.where(Exclusion.provider_id == provider_id)
    return session.scalars(statement.limit(1000)).all()


def list_page(
    session: Session, *, principal: Principal, provider_id: int | None, page: PageParams
) -> Page[ExclusionRead]:
    """``list_`` paged with the total, nothing cut."""
    statement = visible_to(principal)
    if provider_id is not None:
        statement = statement.where(Exclusion.provider_id == provider_id)
    return paginate(
        session, statement, Exclusion.id, page, ExclusionRead.model_validate, count=True
    )


def _enterprise_of(session: Session, principal: Principal, data: ExclusionCreate) -> Enterprise:
    if data.request_id is not None:
        request = request_service.get(session, principal=principal, request_id=data.request_id)
        return enterprise_service.get(
            session, principal=principal, enterprise_id=request.enterprise_id
        )
    assert data.enterprise_id is not None  # the schema guarantees one target
    return enterprise_service.get(session, principal=principal, enterprise_id=data.enterprise_id)


def forbid(session: Session, *, principal: Principal, data: ExclusionCreate) -> Exclusion:
    enterprise = _enterprise_of(session, principal, data)
    if session.get(Provider, data.provider_id) is None:
        raise NotFound(f"provider {data.provider_id} not found", field="provider_id")
    duplicate = session.scalar(
        select(Exclusion.id).where(
            Exclusion.provider_id == data.provider_id,
            Exclusion.request_id.is_(data.request_id)
            if data.request_id is None
            else Exclusion.request_id == data.request_id,
            Exclusion.enterprise_id.is_(None)
            if data.enterprise_id is None
            else Exclusion.enterprise_id == data.enterprise_id,
        )
    )
    if duplicate is not None:
        raise Conflict("this pair is already forbidden", field="provider_id")
    exclusion = Exclusion(
        **data.model_dump(), created_by_id=principal.user_id, created_at=utc_now()
    )
    session.add(exclusion)
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="exclusion.created",
        entity=exclusion,
        region_code=enterprise.region_code,
    )
    _withdraw_forbidden_offers(session, principal, exclusion, enterprise.id)
    return exclusion


def _withdraw_forbidden_offers(
    session: Session, principal: Principal, exclusion: Exclusion, enterprise_id: int
) -> None:
    """Not-yet-accepted pairs that the new rule forbids are withdrawn; their requests are
    left to the worker's re-match (``rematch_queue``), which offers them within a poll."""
    statement = (
        select(Assignment)
        .join(HelpRequest, HelpRequest.id == Assignment.request_id)
        .where(
            Assignment.provider_id == exclusion.provider_id,
            Assignment.status.in_((AssignmentStatus.PROPOSED, AssignmentStatus.OFFERED)),
        )
    )
    if exclusion.request_id is not None:
        statement = statement.where(Assignment.request_id == exclusion.request_id)
    else:
        statement = statement.where(HelpRequest.enterprise_id == enterprise_id)
    reopened: list[int] = []
    for assignment in session.scalars(statement).all():
        was_offer = assignment.status == AssignmentStatus.OFFERED
        move(
            session,
            assignment,
            to=AssignmentStatus.WITHDRAWN if was_offer else AssignmentStatus.CANCELLED,
            actor=principal,
            action="assignment.forbidden",
        )
        if was_offer:
            request = session.get(HelpRequest, assignment.request_id)
            if request is not None:
                request.status = RequestStatus.TRIAGED
                reopened.append(request.id)
    session.flush()
    rematch_queue.mark(session, reopened)


def lift(session: Session, *, principal: Principal, exclusion_id: int) -> None:
    exclusion = session.scalar(visible_to(principal).where(Exclusion.id == exclusion_id))
    if exclusion is None:
        raise NotFound(f"exclusion {exclusion_id} not found")
    before = event_service.snapshot(exclusion)
    session.delete(exclusion)
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="exclusion.lifted",
        entity=exclusion,
        before=before,
        after={},
    )
