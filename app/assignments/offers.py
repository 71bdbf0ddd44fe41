"""Making offers safely: the hard rules a pair must pass and the capacity check, serialised
per provider so two offers can never overfill one (row lock on PostgreSQL; ``BEGIN
IMMEDIATE`` already serialises writers on SQLite)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.assignments.transitions import OPEN
from app.auth.principal import Principal
from app.common.clock import utc_now
from app.enterprises.repository import region_of
from app.errors import Conflict, NotFound
from app.events import service as event_service
from app.models import (
    Assignment,
    AssignmentOrigin,
    AssignmentStatus,
    Exclusion,
    HelpRequest,
    Provider,
    ProviderConflict,
    RequestStatus,
    Vetting,
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


def check_pair_allowed(session: Session, request: HelpRequest, provider: Provider) -> None:
    """The hard rules a hand-made or re-matched offer obeys too (the engine applies them in bulk)."""
    if not provider.active:
        raise Conflict(f"provider {provider.id} is not active", field="provider_id")
    if provider.vetting != Vetting.APPROVED:
        raise Conflict(
            f"provider {provider.id} is not vetted ({provider.vetting.value})", field="provider_id"
        )
    if provider.capacity - open_load(session, provider.id) <= 0:
        raise Conflict(f"provider {provider.id} has no free capacity", field="provider_id")
    if session.get(ProviderConflict, (provider.id, request.enterprise_id)) is not None:
        raise Conflict(
            "the provider declared a conflict of interest with this enterprise", field="provider_id"
        )
    excluded = session.scalar(
        select(Exclusion.id).where(
            Exclusion.provider_id == provider.id,
            (Exclusion.request_id == request.id)
            | (Exclusion.enterprise_id == request.enterprise_id),
        )
    )
    if excluded is not None:
        raise Conflict("this pair is forbidden by an exclusion", field="provider_id")


def exclude_pair(
    session: Session, *, request_id: int, provider_id: int, reason: str, actor: Principal | None
) -> None:
    """Remember a pair that must not be proposed again (idempotent)."""
    exists = session.scalar(
        select(Exclusion.id).where(
            Exclusion.request_id == request_id, Exclusion.provider_id == provider_id
        )
    )
    if exists is None:
        session.add(
            Exclusion(
                request_id=request_id,
                provider_id=provider_id,
                reason=reason[:500],
                created_by_id=actor.user_id if actor else None,
                created_at=utc_now(),
            )
        )
        session.flush()


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
    request.status = RequestStatus.MATCHED
    session.flush()
    event_service.record(
        session,
        actor=actor,
        action="assignment.offered",
        entity=assignment,
        region_code=region_of(session, assignment),
    )
    return assignment
