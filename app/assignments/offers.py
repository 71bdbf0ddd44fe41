"""Making offers safely: the hard rules a pair must pass and the capacity check, serialised
per provider so two offers can never overfill one (row lock on PostgreSQL; ``BEGIN
IMMEDIATE`` already serialises writers on SQLite)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Insert, bindparam, exists, func, insert, select
from sqlalchemy.orm import Session

from app.assignments.lifecycle import move
from app.assignments.transitions import OPEN
from app.common.clock import utc_now
from app.common.principal import Principal
from app.enterprises.repository import region_of
from app.errors import NotFound
from app.events import service as event_service
from app.models import (
    Assignment,
    AssignmentOrigin,
    AssignmentStatus,
    Exclusion,
    HelpRequest,
    Provider,
    RequestStatus,
    table_of,
)

OFFER_TTL = timedelta(days=2)


def lock_provider(session: Session, provider_id: int) -> Provider:
    provider = session.scalar(select(Provider).where(Provider.id == provider_id).with_for_update())
    if provider is None:
        raise NotFound(f"provider {provider_id} not found", field="provider_id")
    return provider


def open_load(session: Session, provider_id: int) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(Assignment)
        .where(Assignment.provider_id == provider_id, Assignment.status.in_(OPEN))
    )
    return int(count or 0)


def _exclude_pair_statement() -> Insert:
    """``exclude_pair``'s statement with its values bound (``v_`` + column), built once:
    building it and its cache key cost more CPU than running it."""
    columns = table_of(Exclusion).c
    keys = ("request_id", "provider_id", "reason", "created_by_id", "created_at")
    known = exists().where(
        Exclusion.request_id == bindparam("v_request_id"),
        Exclusion.provider_id == bindparam("v_provider_id"),
    )
    row = select(*(bindparam(f"v_{k}", type_=columns[k].type) for k in keys)).where(~known)
    return insert(table_of(Exclusion)).from_select(list(keys), row)  # Core: bound, not bulk


_EXCLUDE_PAIR = _exclude_pair_statement()


def exclude_pair(
    session: Session, *, request_id: int, provider_id: int, reason: str, actor: Principal | None
) -> None:
    """Remember a pair that must not be proposed again (idempotent).

    One ``INSERT ... SELECT ... WHERE NOT EXISTS`` rather than a read and an ORM insert:
    answering an offer paid two round trips and a unit-of-work flush for it. Callers hold
    the request's lock, so two of them cannot both find the pair missing."""
    values = {
        "request_id": request_id,
        "provider_id": provider_id,
        "reason": reason[:500],
        "created_by_id": actor.user_id if actor else None,
        "created_at": utc_now(),
    }
    session.execute(_EXCLUDE_PAIR, {f"v_{key}": value for key, value in values.items()})


def create_offer(
    session: Session,
    *,
    request: HelpRequest,
    provider: Provider,
    origin: AssignmentOrigin,
    actor: Principal | None,
    score: float = 0.0,
    breakdown: dict[str, Any] | None = None,
    match_run_id: int | None = None,
) -> Assignment:
    now = utc_now()
    assignment = Assignment(
        request_id=request.id,
        provider_id=provider.id,
        origin=origin,
        status=AssignmentStatus.OFFERED,
        score=score,
        breakdown=breakdown or {},
        match_run_id=match_run_id,
        offered_at=now,
        offer_expires_at=now + OFFER_TTL,
    )
    session.add(assignment)
    session.flush()
    request.status = team_status(session, request)
    session.flush()
    event_service.record(
        session,
        actor=actor,
        action="assignment.offered",
        entity=assignment,
        region_code=region_of(session, assignment),
    )
    return assignment


def team_status(session: Session, request: HelpRequest) -> RequestStatus:
    """The status a request has once an offer is made: ``matched`` when every provider it
    wants holds an open assignment (``in_progress`` if one of them already works on it);
    a team with an empty seat stays ``triaged`` so a run or re-match fills the seat."""
    statuses = list(
        session.scalars(
            select(Assignment.status).where(
                Assignment.request_id == request.id, Assignment.status.in_(OPEN)
            )
        )
    )
    if len(statuses) < request.providers_wanted:
        return RequestStatus.TRIAGED
    working = {AssignmentStatus.ACCEPTED, AssignmentStatus.ACTIVE}
    return RequestStatus.IN_PROGRESS if working & set(statuses) else RequestStatus.MATCHED


def release_open_work(session: Session, *, provider_id: int, actor: Principal | None) -> list[int]:
    """A deactivated provider's accepted and active work is withdrawn and its requests go
    back to triaged, ready to be re-matched (its offers are released the same way)."""
    released = []
    for assignment in session.scalars(
        select(Assignment)
        .where(Assignment.provider_id == provider_id, Assignment.status.in_(OPEN))
        .order_by(Assignment.id)
    ).all():
        move(
            session,
            assignment,
            to=AssignmentStatus.WITHDRAWN,
            actor=actor,
            action="assignment.released",
        )
        request = session.get(HelpRequest, assignment.request_id)
        if request is not None and request.status in (
            RequestStatus.MATCHED,
            RequestStatus.IN_PROGRESS,
        ):
            request.status = RequestStatus.TRIAGED
            session.flush()
        released.append(assignment.request_id)
    return released
