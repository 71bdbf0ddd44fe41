"""Queries over assignments; ``visible_to`` is the one place their role scoping lives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Update, and_, exists, false, func, or_, select, update

from app.assignments.transitions import OPEN
from app.common.idsets import in_ids
from app.common.principal import Principal
from app.common.regions import region_clause
from app.models import (
    Assignment,
    AssignmentStatus,
    Enterprise,
    Exclusion,
    HelpRequest,
    MatchRun,
    ProviderConflict,
    RequestStatus,
)


def visible_to(principal: Principal) -> Select[Assignment]:
    statement = (
        select(Assignment)
        .join(HelpRequest, HelpRequest.id == Assignment.request_id)
        .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
    )
    if principal.is_admin:
        return statement
    if principal.is_coordinator:
        return statement.where(region_clause(Enterprise.region_code, principal.region_prefixes))
    if principal.is_provider:
        # Drafts are the coordinators' business until published.
        return statement.where(
            Assignment.provider_id == principal.provider_id,
            Assignment.status != AssignmentStatus.PROPOSED,
        )
    if principal.is_enterprise:
        return statement.where(
            HelpRequest.enterprise_id == principal.enterprise_id,
            Assignment.status != AssignmentStatus.PROPOSED,
        )
    return statement.where(false())


@dataclass(frozen=True)
class AssignmentFilter:
    status: str | None = None
    provider_id: int | None = None
    request_id: int | None = None
    match_run_id: int | None = None


def filtered(statement: Select[Assignment], f: AssignmentFilter) -> Select[Assignment]:
    if f.status:
        statement = statement.where(Assignment.status == f.status)
    if f.provider_id:
        statement = statement.where(Assignment.provider_id == f.provider_id)
    if f.request_id:
        statement = statement.where(Assignment.request_id == f.request_id)
    if f.match_run_id:
        statement = statement.where(Assignment.match_run_id == f.match_run_id)
    return statement


def open_load(provider_ids: list[int] | None = None) -> Select[int, int]:
    """(provider_id, open assignments) — capacity counts every open assignment, any origin."""
    statement = (
        select(Assignment.provider_id, func.count())
        .where(Assignment.status.in_(OPEN))
        .group_by(Assignment.provider_id)
    )
    if provider_ids is not None:
        statement = statement.where(Assignment.provider_id.in_(provider_ids))
    return statement


def open_for_request(request_id: int) -> Select[Assignment]:
    return select(Assignment).where(
        Assignment.request_id == request_id, Assignment.status.in_(OPEN)
    )


def weights_sources(request_ids: Sequence[int]) -> Select[int, int | None, dict[str, Any]]:
    """(request, run, breakdown) of every assignment of these requests, oldest first: the
    last one with a run (or a re-match's ``weights_of_run``) says whose weights apply."""
    return (
        select(Assignment.request_id, Assignment.match_run_id, Assignment.breakdown)
        .where(in_ids(Assignment.request_id, request_ids))
        .order_by(Assignment.request_id, Assignment.id)
    )


def run_weights(run_ids: Sequence[int]) -> Select[int, dict[str, Any]]:
    return select(MatchRun.id, MatchRun.weights).where(in_ids(MatchRun.id, run_ids))


def offer_blocked(request: HelpRequest, provider_id: int) -> Select[tuple[bool]]:
    """Whether a planned re-match offer went stale since its snapshot: the request holds an
    open assignment again, or the pair was excluded or declared a conflict meanwhile."""
    held = exists().where(Assignment.request_id == request.id, Assignment.status.in_(OPEN))
    excluded = exists().where(
        Exclusion.provider_id == provider_id,
        or_(Exclusion.request_id == request.id, Exclusion.enterprise_id == request.enterprise_id),
    )
    conflict = exists().where(
        ProviderConflict.provider_id == provider_id,
        ProviderConflict.enterprise_id == request.enterprise_id,
    )
    return select(or_(held, excluded, conflict))


# --- taking back many offers at once (``app.assignments.reopen``) ---------------------------


def requests_of(assignment_ids: Sequence[int]) -> Select[int]:
    return select(Assignment.request_id).where(in_ids(Assignment.id, assignment_ids))


def offered_with_region(
    assignment_ids: Sequence[int],
) -> Select[int, int, int, AssignmentStatus, int, datetime, str]:
    """The columns ``move`` records of the rows still offered, with their region."""
    return (
        select(
            Assignment.id,
            Assignment.request_id,
            Assignment.provider_id,
            Assignment.status,
            Assignment.version,
            Assignment.updated_at,
            Enterprise.region_code,
        )
        .join(HelpRequest, HelpRequest.id == Assignment.request_id)
        .outerjoin(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
        .where(in_ids(Assignment.id, assignment_ids), Assignment.status == AssignmentStatus.OFFERED)
    )


def move_offered(assignment_ids: Sequence[int], to: AssignmentStatus, now: datetime) -> Update:
    """Compare-and-set of many offers: only rows still offered move; ``RETURNING`` them."""
    return (
        update(Assignment)
        .where(in_ids(Assignment.id, assignment_ids), Assignment.status == AssignmentStatus.OFFERED)
        .values(status=to, version=Assignment.version + 1, updated_at=now)
        .returning(Assignment.id, Assignment.status, Assignment.version, Assignment.updated_at)
        .execution_options(synchronize_session=False)
    )


def reopen_requests(request_ids: Sequence[int], now: datetime) -> Update:
    """Requests whose offer was taken back go back to ``triaged``: a single request that was
    ``matched``, or a team (its working members stay) whose emptied seat is matchable again.
    The version bump makes a concurrent editor's ``If-Match`` stale."""
    team_with_a_seat = and_(
        HelpRequest.providers_wanted > 1, HelpRequest.status == RequestStatus.IN_PROGRESS
    )
    return (
        update(HelpRequest)
        .where(
            in_ids(HelpRequest.id, request_ids),
            or_(HelpRequest.status == RequestStatus.MATCHED, team_with_a_seat),
        )
        .values(status=RequestStatus.TRIAGED, version=HelpRequest.version + 1, updated_at=now)
        .returning(HelpRequest.id, HelpRequest.status, HelpRequest.version, HelpRequest.updated_at)
        .execution_options(synchronize_session=False)
    )


def excluded_pairs(pairs: Sequence[tuple[int, int]]) -> Select[int | None, int]:
    """(request, provider) request-level exclusions among (a superset of) ``pairs``."""
    return select(Exclusion.request_id, Exclusion.provider_id).where(
        in_ids(Exclusion.request_id, [r for r, _ in pairs]),
        in_ids(Exclusion.provider_id, [p for _, p in pairs]),
    )
