"""Queries over assignments; ``visible_to`` is the one place their role scoping lives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Update,
    and_,
    bindparam,
    false,
    func,
    or_,
    select,
    update,
)

from app.assignments.transitions import OPEN
from app.common.idsets import in_ids
from app.common.principal import Principal
from app.common.regions import region_clause
from app.common.shapes import Param, literal
from app.models import (
    Assignment,
    AssignmentStatus,
    Enterprise,
    Exclusion,
    HelpRequest,
    MatchRun,
    Provider,
    ProviderConflict,
    RequestStatus,
    Vetting,
)


def visible_to(principal: Principal, param: Param = literal) -> Select[Assignment]:
    """The assignments ``principal`` may see; its values go in through ``param``
    (``app.common.shapes``)."""
    statement = (
        select(Assignment)
        .join(HelpRequest, HelpRequest.id == Assignment.request_id)
        .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
    )
    if principal.is_admin:
        return statement
    if principal.is_coordinator:
        prefixes = principal.region_prefixes
        return statement.where(region_clause(Enterprise.region_code, prefixes, param))
    if principal.is_provider:
        return statement.where(*_provider_scope(principal, param))
    if principal.is_enterprise:
        return statement.where(
            HelpRequest.enterprise_id == param("scope_enterprise_id", principal.enterprise_id),
            Assignment.status != AssignmentStatus.PROPOSED,
        )
    return statement.where(false())


def _provider_scope(principal: Principal, param: Param) -> tuple[ColumnElement[bool], ...]:
    # Drafts are the coordinators' business until published.
    return (
        Assignment.provider_id == param("scope_provider_id", principal.provider_id),
        Assignment.status != AssignmentStatus.PROPOSED,
    )


def one_visible_to(principal: Principal, assignment_id: int) -> Select[Assignment]:
    """One assignment as ``visible_to`` scopes it. A provider's is ``ONE_OF_PROVIDER``: its
    scope lies on the assignment itself, so it joins nothing (the request and its
    enterprise always exist: foreign keys, deleted in cascade)."""
    return visible_to(principal).where(Assignment.id == assignment_id)


#: ``one_visible_to`` for a provider, built once (every answer to an offer starts with it;
#: building a statement and its cache key cost more CPU than running it): bind
#: ``assignment_id`` and ``provider_id``.
ONE_OF_PROVIDER: Select[Assignment] = select(Assignment).where(
    Assignment.id == bindparam("assignment_id"),
    Assignment.provider_id == bindparam("provider_id"),
    Assignment.status != AssignmentStatus.PROPOSED,
)


@dataclass(frozen=True)
class AssignmentFilter:
    status: str | None = None
    provider_id: int | None = None
    request_id: int | None = None
    match_run_id: int | None = None

    def shape(self) -> tuple[bool, ...]:
        """Which filters :func:`filtered` applies."""
        return (
            bool(self.status),
            bool(self.provider_id),
            bool(self.request_id),
            bool(self.match_run_id),
        )


def filtered(
    statement: Select[Assignment], f: AssignmentFilter, param: Param = literal
) -> Select[Assignment]:
    """``statement`` narrowed by the filters given; each value is ``param`` of the filter's
    name (``vars(f)`` holds them all)."""
    if f.status:
        statement = statement.where(Assignment.status == param("status", f.status))
    if f.provider_id:
        statement = statement.where(Assignment.provider_id == param("provider_id", f.provider_id))
    if f.request_id:
        statement = statement.where(Assignment.request_id == param("request_id", f.request_id))
    if f.match_run_id:
        run = param("match_run_id", f.match_run_id)
        statement = statement.where(Assignment.match_run_id == run)
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


def offered_categories(limit: int) -> Select[str]:
    """Categories of requests with an open offer, most offers first: where the next declines
    (and so the next re-matches) will come from."""
    return (
        select(HelpRequest.category)
        .join(Assignment, Assignment.request_id == HelpRequest.id)
        .where(Assignment.status == AssignmentStatus.OFFERED)
        .group_by(HelpRequest.category)
        .order_by(func.count().desc(), HelpRequest.category)
        .limit(limit)
    )


def run_weights(run_ids: Sequence[int]) -> Select[int, dict[str, Any]]:
    return select(MatchRun.id, MatchRun.weights).where(in_ids(MatchRun.id, run_ids))


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


# --- writing a re-match's offers at once (``app.assignments.bulk_offers``) ------------------


def request_paths(request_ids: Sequence[int]) -> Select[int, int, int | None]:
    """(request, enterprise, plan): the rows to lock before the requests (common/locking)."""
    return select(HelpRequest.id, HelpRequest.enterprise_id, HelpRequest.plan_id).where(
        in_ids(HelpRequest.id, request_ids)
    )


def request_facts(
    request_ids: Sequence[int],
) -> Select[int, RequestStatus, int, int, str]:
    return (
        select(
            HelpRequest.id,
            HelpRequest.status,
            HelpRequest.providers_wanted,
            HelpRequest.enterprise_id,
            Enterprise.region_code,
        )
        .outerjoin(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
        .where(in_ids(HelpRequest.id, request_ids))
    )


def provider_facts(provider_ids: Sequence[int]) -> Select[int, bool, Vetting, int]:
    return select(Provider.id, Provider.active, Provider.vetting, Provider.capacity).where(
        in_ids(Provider.id, provider_ids)
    )


def open_statuses(request_ids: Sequence[int]) -> Select[int, AssignmentStatus]:
    return select(Assignment.request_id, Assignment.status).where(
        in_ids(Assignment.request_id, request_ids), Assignment.status.in_(OPEN)
    )


def exclusions_of(
    request_ids: Sequence[int], enterprise_ids: Sequence[int], provider_ids: Sequence[int]
) -> Select[int | None, int | None, int]:
    """(request, enterprise, provider) of exclusions touching these pairs' providers."""
    return select(Exclusion.request_id, Exclusion.enterprise_id, Exclusion.provider_id).where(
        in_ids(Exclusion.provider_id, provider_ids),
        or_(
            in_ids(Exclusion.request_id, request_ids),
            in_ids(Exclusion.enterprise_id, enterprise_ids),
        ),
    )


def conflicts_of(provider_ids: Sequence[int], enterprise_ids: Sequence[int]) -> Select[int, int]:
    return select(ProviderConflict.provider_id, ProviderConflict.enterprise_id).where(
        in_ids(ProviderConflict.provider_id, provider_ids),
        in_ids(ProviderConflict.enterprise_id, enterprise_ids),
    )


def by_ids(assignment_ids: Sequence[int]) -> Select[Assignment]:
    return select(Assignment).where(in_ids(Assignment.id, assignment_ids)).order_by(Assignment.id)


def set_request_status(request_ids: Sequence[int], to: RequestStatus, now: datetime) -> Update:
    """Requests not yet ``to`` become it, version bumped; ``RETURNING`` what loaded copies need."""
    return (
        update(HelpRequest)
        .where(in_ids(HelpRequest.id, request_ids), HelpRequest.status != to)
        .values(status=to, version=HelpRequest.version + 1, updated_at=now)
        .returning(HelpRequest.id, HelpRequest.status, HelpRequest.version, HelpRequest.updated_at)
        .execution_options(synchronize_session=False)
    )


def existing_requests(request_ids: Sequence[int]) -> Select[int]:
    return select(HelpRequest.id).where(in_ids(HelpRequest.id, request_ids))
