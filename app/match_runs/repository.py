"""Queries over match runs: role scoping, the job-claiming statements and the draft's rows.

The claim is one statement on both databases::

    UPDATE match_runs SET status='running', claimed_by=:me, attempts=attempts+1, ...
    WHERE id = (SELECT id FROM match_runs
                WHERE status='queued' OR (status='running' AND lease_expires_at < :now)
                ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1)
    RETURNING id, attempts

On PostgreSQL ``SKIP LOCKED`` lets any number of workers poll without blocking or taking
the same run; SQLite renders no ``FOR UPDATE`` and relies on ``BEGIN IMMEDIATE`` serialising
writers. ``(claimed_by, attempts)`` is the fencing token every later write of the worker
compares against, so a worker whose lease lapsed cannot overwrite its successor.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Update,
    and_,
    cast,
    false,
    func,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.orm import Session

from app.assignments.encode import Scope
from app.assignments.transitions import OPEN
from app.common.idsets import in_ids
from app.common.principal import Principal
from app.models import (
    Assignment,
    AssignmentStatus,
    Enterprise,
    Exclusion,
    HelpRequest,
    MatchRun,
    MatchRunStatus,
    Provider,
    ProviderConflict,
    RequestStatus,
    Vetting,
)
from app.requests import repository as request_repository

ACTIVE = (MatchRunStatus.QUEUED, MatchRunStatus.RUNNING)
MAX_ATTEMPTS = 3  # a run that kills its worker this often is failed, not retried forever
QUEUE_PATIENCE = timedelta(minutes=10)  # a run no worker took by then no longer blocks its scope
_SCOPE_LOCK_NAMESPACE = 0x5A48_0000_0000  # keeps our advisory-lock keys apart from others'


def visible_to(principal: Principal) -> Select[MatchRun]:
    """Admins see every run; coordinators the runs scoped inside their regions; others none."""
    statement = select(MatchRun)
    if principal.is_admin:
        return statement
    if principal.is_coordinator:
        return statement.where(_inside(principal.region_prefixes))
    return statement.where(false())


def _inside(prefixes: tuple[str, ...]) -> ColumnElement[bool]:
    if not prefixes:
        return false()
    return or_(*(MatchRun.scope_region.startswith(p) for p in prefixes))


@dataclass(frozen=True)
class MatchRunFilter:
    status: MatchRunStatus | None = None
    region: str | None = None


def filtered(statement: Select[MatchRun], f: MatchRunFilter) -> Select[MatchRun]:
    if f.status:
        statement = statement.where(MatchRun.status == f.status)
    if f.region:
        statement = statement.where(MatchRun.scope_region.startswith(f.region))
    return statement


def lock_scope(session: Session, region: str) -> None:
    """Serialise triggers of one scope until the transaction ends, so "one active run per
    scope" holds under concurrency (PostgreSQL advisory lock; SQLite writers already queue)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    key = _SCOPE_LOCK_NAMESPACE + zlib.crc32(region.encode())
    session.execute(select(func.pg_advisory_xact_lock(cast(key, BigInteger))))


def _stuck(now: datetime) -> ColumnElement[bool]:
    """Queued with no worker taking it for ``QUEUE_PATIENCE``, or running past its lease."""
    return or_(
        and_(MatchRun.status == MatchRunStatus.QUEUED, MatchRun.created_at < now - QUEUE_PATIENCE),
        and_(MatchRun.status == MatchRunStatus.RUNNING, MatchRun.lease_expires_at < now),
    )


def fail_stuck_in_scope(region: str, now: datetime) -> Update:
    """Fail the scope's stuck runs so a new run can take their place; ``RETURNING id``.
    A worker that still holds one finds its fence gone and writes nothing."""
    return (
        update(MatchRun)
        .where(MatchRun.scope_region == region, _stuck(now))
        .values(
            status=MatchRunStatus.FAILED,
            stage="failed",
            error=(
                "stuck: no worker finished it in time (queued too long or its lease expired); "
                "replaced by a new run of the scope"
            ),
            finished_at=now,
            lease_expires_at=None,
            version=MatchRun.version + 1,
            updated_at=now,
        )
        .returning(MatchRun.id)
        .execution_options(synchronize_session=False)
    )


def active_in_scope(region: str) -> Select[MatchRun]:
    return (
        select(MatchRun)
        .where(MatchRun.scope_region == region, MatchRun.status.in_(ACTIVE))
        .order_by(MatchRun.id)
        .limit(1)
    )


def visible_request_ids(principal: Principal, request_ids: Sequence[int]) -> Select[int]:
    return (
        request_repository.visible_to(principal)
        .where(in_ids(HelpRequest.id, request_ids))
        .with_only_columns(HelpRequest.id)
    )


def request_ids_in(scope: Scope) -> Select[int]:
    """Ids of the requests a run of ``scope`` decides (the encoder's own selection)."""
    return scope.statement().with_only_columns(HelpRequest.id)


# -- claiming and fencing ------------------------------------------------------------------


def claim(
    *, worker_id: str, now: datetime, lease_until: datetime, run_id: int | None = None
) -> Update:
    """Take the oldest claimable run (or ``run_id`` only); ``RETURNING id, attempts``."""
    claimable = or_(
        MatchRun.status == MatchRunStatus.QUEUED,
        and_(
            MatchRun.status == MatchRunStatus.RUNNING,
            MatchRun.lease_expires_at < now,
            MatchRun.attempts < MAX_ATTEMPTS,
        ),
    )
    pick = select(MatchRun.id).where(claimable)
    if run_id is not None:
        pick = pick.where(MatchRun.id == run_id)
    picked = pick.order_by(MatchRun.id).limit(1).with_for_update(skip_locked=True)
    return (
        update(MatchRun)
        .where(MatchRun.id == picked.scalar_subquery())
        .values(
            status=MatchRunStatus.RUNNING,
            claimed_by=worker_id,
            lease_expires_at=lease_until,
            attempts=MatchRun.attempts + 1,
            started_at=func.coalesce(MatchRun.started_at, now),
            stage="claimed",
            error="",
            version=MatchRun.version + 1,
            updated_at=now,
        )
        .returning(MatchRun.id, MatchRun.attempts, MatchRun.request_id)
        .execution_options(synchronize_session=False)
    )


def owned_by(run_id: int, worker_id: str, attempt: int) -> ColumnElement[bool]:
    """The fence: still running, and still this worker's claim of this attempt."""
    return and_(
        MatchRun.id == run_id,
        MatchRun.status == MatchRunStatus.RUNNING,
        MatchRun.claimed_by == worker_id,
        MatchRun.attempts == attempt,
    )


def fenced_update(fence: ColumnElement[bool], now: datetime, **values: Any) -> Update:
    """A compare-and-set on the run; the caller checks ``rowcount == 1``."""
    return (
        update(MatchRun)
        .where(fence)
        .values(version=MatchRun.version + 1, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )


def reap_abandoned(now: datetime) -> Update:
    """Runs whose workers died ``MAX_ATTEMPTS`` times: failed, so their scope is free again."""
    return (
        update(MatchRun)
        .where(
            MatchRun.status == MatchRunStatus.RUNNING,
            MatchRun.lease_expires_at < now,
            MatchRun.attempts >= MAX_ATTEMPTS,
        )
        .values(
            status=MatchRunStatus.FAILED,
            error=f"abandoned: its worker stopped {MAX_ATTEMPTS} times without finishing",
            finished_at=now,
            lease_expires_at=None,
            version=MatchRun.version + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def has_claimable(now: datetime) -> Select[int]:
    """A cheap read before the write-locking claim, so idle polling never blocks writers."""
    return (
        select(MatchRun.id)
        .where(
            or_(
                MatchRun.status == MatchRunStatus.QUEUED,
                and_(MatchRun.status == MatchRunStatus.RUNNING, MatchRun.lease_expires_at < now),
            )
        )
        .limit(1)
    )


# -- drafts ----------------------------------------------------------------------------------


def earlier_drafts(run: MatchRun) -> Select[MatchRun]:
    """Unpublished drafts of the same scope that ``run`` replaces."""
    return (
        select(MatchRun)
        .where(
            MatchRun.scope_region == run.scope_region,
            MatchRun.status == MatchRunStatus.SUCCEEDED,
            MatchRun.id < run.id,
        )
        .order_by(MatchRun.id)
        .with_for_update()  # a concurrent publish of one of them finishes first, or waits
    )


def cancel_proposals(run_ids: Sequence[int], now: datetime) -> Update:
    return (
        update(Assignment)
        .where(Assignment.match_run_id.in_(run_ids), Assignment.status == AssignmentStatus.PROPOSED)
        .values(status=AssignmentStatus.CANCELLED, version=Assignment.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def of_run(run_id: int, *statuses: AssignmentStatus) -> Select[Assignment]:
    statement = select(Assignment).where(Assignment.match_run_id == run_id)
    if statuses:
        statement = statement.where(Assignment.status.in_(statuses))
    return statement.order_by(Assignment.request_id, Assignment.id)


def live_for(request_ids: Sequence[int]) -> Select[Assignment]:
    """Open (offered, accepted, active) assignments of these requests, from any source."""
    return (
        select(Assignment)
        .where(in_ids(Assignment.request_id, request_ids), Assignment.status.in_(OPEN))
        .order_by(Assignment.request_id, Assignment.id)
    )


# -- publishing and reverting: statements over the run's own rows, never id lists ------------


def _of_run(run_id: int, status: AssignmentStatus) -> ColumnElement[bool]:
    return and_(Assignment.match_run_id == run_id, Assignment.status == status)


def proposal_rows(run_id: int) -> Select[int, int, int, RequestStatus, int, str, int]:
    """(assignment, request, provider, request status, enterprise, region, providers
    wanted) per proposal, the requests locked in id order: the status publish checks here is
    the one it writes over, without a compare-and-set ``UPDATE`` of its own."""
    return (
        select(
            Assignment.id,
            Assignment.request_id,
            Assignment.provider_id,
            HelpRequest.status,
            HelpRequest.enterprise_id,
            Enterprise.region_code,
            HelpRequest.providers_wanted,
        )
        .join(HelpRequest, HelpRequest.id == Assignment.request_id)
        .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
        .where(_of_run(run_id, AssignmentStatus.PROPOSED))
        .order_by(Assignment.request_id, Assignment.id)
        .with_for_update(of=HelpRequest)
    )


def lock_proposed_providers(run_id: int) -> Select[int, bool, int, Vetting]:
    """(provider, active, capacity, vetting) of the draft's providers, locked in id order so two
    publishes (or a publish and an offer) cannot deadlock."""
    mine = select(Assignment.provider_id).where(_of_run(run_id, AssignmentStatus.PROPOSED))
    return (
        select(Provider.id, Provider.active, Provider.capacity, Provider.vetting)
        .where(Provider.id.in_(mine))
        .order_by(Provider.id)
        .with_for_update()
    )


def live_beside_proposals(run_id: int) -> Select[int, int, AssignmentStatus, int]:
    """(request, assignment, status, provider): open assignments the draft's requests
    already have."""
    mine = select(Assignment.request_id).where(_of_run(run_id, AssignmentStatus.PROPOSED))
    return (
        select(Assignment.request_id, Assignment.id, Assignment.status, Assignment.provider_id)
        .where(Assignment.request_id.in_(mine), Assignment.status.in_(OPEN))
        .order_by(Assignment.request_id, Assignment.id)
    )


def load_of_proposed_providers(run_id: int) -> Select[int, int]:
    """(provider, open assignments) for the draft's providers, whatever the origin."""
    mine = select(Assignment.provider_id).where(_of_run(run_id, AssignmentStatus.PROPOSED))
    return (
        select(Assignment.provider_id, func.count())
        .where(Assignment.provider_id.in_(mine), Assignment.status.in_(OPEN))
        .group_by(Assignment.provider_id)
    )


def proposals_in_conflict(run_id: int) -> Select[int]:
    """Requests whose proposed provider declared a conflict with the request's enterprise."""
    return (
        select(Assignment.request_id)
        .join(HelpRequest, HelpRequest.id == Assignment.request_id)
        .join(
            ProviderConflict,
            and_(
                ProviderConflict.provider_id == Assignment.provider_id,
                ProviderConflict.enterprise_id == HelpRequest.enterprise_id,
            ),
        )
        .where(_of_run(run_id, AssignmentStatus.PROPOSED))
    )


def proposals_excluded(run_id: int) -> Select[int]:
    """Requests whose proposed pair is forbidden, for the request or its whole enterprise."""
    by_request = (
        select(Assignment.request_id)
        .join(
            Exclusion,
            and_(
                Exclusion.provider_id == Assignment.provider_id,
                Exclusion.request_id == Assignment.request_id,
            ),
        )
        .where(_of_run(run_id, AssignmentStatus.PROPOSED))
    )
    by_enterprise = (
        select(Assignment.request_id)
        .join(HelpRequest, HelpRequest.id == Assignment.request_id)
        .join(
            Exclusion,
            and_(
                Exclusion.provider_id == Assignment.provider_id,
                Exclusion.enterprise_id == HelpRequest.enterprise_id,
            ),
        )
        .where(_of_run(run_id, AssignmentStatus.PROPOSED))
    )
    return select(union(by_request, by_enterprise).subquery().c[0])


def offer_proposals(run_id: int, now: datetime, expires: datetime) -> Update:
    """proposed → offered for the whole draft (the caller compares the rowcount)."""
    return (
        update(Assignment)
        .where(_of_run(run_id, AssignmentStatus.PROPOSED))
        .values(
            status=AssignmentStatus.OFFERED,
            offered_at=now,
            offer_expires_at=expires,
            version=Assignment.version + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def offers_of_run(run_id: int) -> Select[int, str]:
    """(assignment, its enterprise's region) of the run's offers, in the draft's order: what
    the audit events of a publish are selected from."""
    return (
        select(Assignment.id, Enterprise.region_code)
        .join(HelpRequest, HelpRequest.id == Assignment.request_id)
        .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
        .where(_of_run(run_id, AssignmentStatus.OFFERED))
        .order_by(Assignment.request_id, Assignment.id)
    )


def offered_now(run_id: int, now: datetime, expires: datetime) -> Select[int, str]:
    """:func:`offers_of_run` selected from the rows :func:`offer_proposals` moves, as one
    ``WITH offered AS (UPDATE ... RETURNING ...)`` (PostgreSQL): the events are inserted by
    the statement that offers, without scanning the run's assignments again."""
    moved = (
        offer_proposals(run_id, now, expires)
        .returning(Assignment.id, Assignment.request_id)
        .cte("offered")
    )
    return (
        select(moved.c.id, Enterprise.region_code)
        .join(HelpRequest, HelpRequest.id == moved.c.request_id)
        .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
        .order_by(moved.c.request_id, moved.c.id)
    )


def mark_requests(
    request_ids: Sequence[int], sources: Sequence[RequestStatus], to: RequestStatus, now: datetime
) -> Update:
    """Compare-and-set of many requests' status; ``RETURNING`` the ids it moved. The version
    bump makes a concurrent editor's ``If-Match`` stale (bulk updates bypass the ORM's)."""
    return (
        update(HelpRequest)
        .where(in_ids(HelpRequest.id, request_ids), HelpRequest.status.in_(sources))
        .values(status=to, version=HelpRequest.version + 1, updated_at=now)
        .returning(HelpRequest.id)
        .execution_options(synchronize_session=False)
    )


def withdraw_offers(run_id: int, now: datetime) -> Update:
    """offered → withdrawn for the run's rows still offered; ``RETURNING (id, request)``."""
    return (
        update(Assignment)
        .where(_of_run(run_id, AssignmentStatus.OFFERED))
        .values(status=AssignmentStatus.WITHDRAWN, version=Assignment.version + 1, updated_at=now)
        .returning(Assignment.id, Assignment.request_id)
        .execution_options(synchronize_session=False)
    )


def regions_of_requests(request_ids: Sequence[int]) -> Select[int, str]:
    return (
        select(HelpRequest.id, Enterprise.region_code)
        .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
        .where(in_ids(HelpRequest.id, request_ids))
    )


def lock_run(run_id: int) -> Select[MatchRun]:
    """The run row, locked: two publishes or a publish and a revert of one run serialise."""
    return select(MatchRun).where(MatchRun.id == run_id).with_for_update()
