"""Publishing a draft and taking it back: each one call, one transaction, all or nothing.

One provider over capacity, or one request that meanwhile got an offer by hand, and nothing
is published; a revert withdraws only what nobody accepted yet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Update
from sqlalchemy.orm import Session

from app.assignments import offers
from app.assignments.encode import MATCHABLE
from app.auth.principal import Principal
from app.common.clock import utc_now
from app.errors import Conflict, NotFound
from app.events import service as event_service
from app.match_runs import repository
from app.models import (
    Assignment,
    AssignmentStatus,
    HelpRequest,
    MatchRun,
    MatchRunStatus,
    Provider,
    RequestStatus,
    Vetting,
)
from app.plans import service as plan_service

KEPT_ON_REVERT = (AssignmentStatus.ACCEPTED, AssignmentStatus.ACTIVE, AssignmentStatus.COMPLETED)


@dataclass
class Published:
    run: MatchRun
    offered: list[int] = field(default_factory=list)
    plan_ids: list[int] = field(default_factory=list)


def _locked_run(session: Session, run: MatchRun, *, expected: MatchRunStatus) -> MatchRun:
    """Re-read the run under a row lock: concurrent publishes or reverts queue here."""
    locked = session.scalar(repository.lock_run(run.id).execution_options(populate_existing=True))
    if locked is None:
        raise NotFound(f"match run {run.id} not found")
    if locked.status != expected:
        raise Conflict(
            f"match run {locked.id} is {locked.status.value}; only a {expected.value} run can "
            "do that",
            current_status=locked.status.value,
        )
    return locked


@dataclass
class _Facts:
    """Everything publishing re-checks, read in a handful of queries (not per proposal).

    The per-pair twin of these rules is ``offers.check_pair_allowed``; here they run over the
    whole draft at once, with capacity counted for all of a provider's proposals together.
    """

    requests: dict[int, tuple[HelpRequest, str]]  # request → (row, enterprise region)
    live: dict[int, Assignment]
    load: dict[int, int]
    conflicts: set[tuple[int, int]]  # (provider, enterprise)
    excluded: set[tuple[int, str, int]]  # (provider, "request" | "enterprise", id)


def _facts(session: Session, proposals: Sequence[Assignment]) -> _Facts:
    request_ids = [p.request_id for p in proposals]
    provider_ids = sorted({p.provider_id for p in proposals})
    rows = session.execute(repository.requests_with_region(request_ids))
    requests = {r.id: (r, region) for r, region in rows}
    enterprise_ids = sorted({r.enterprise_id for r, _ in requests.values()})
    live: dict[int, Assignment] = {}
    for assignment in session.scalars(repository.live_for(request_ids)):
        live.setdefault(assignment.request_id, assignment)
    excluded = session.execute(
        repository.exclusions_among(provider_ids, request_ids, enterprise_ids)
    )
    return _Facts(
        requests=requests,
        live=live,
        load=dict(session.execute(repository.open_load(provider_ids)).all()),
        conflicts={
            (provider, enterprise)
            for provider, enterprise in session.execute(
                repository.conflicts_among(provider_ids, enterprise_ids)
            )
        },
        excluded={
            (provider, "request" if request else "enterprise", request or enterprise or 0)
            for provider, request, enterprise in excluded
        },
    )


def _why_not(facts: _Facts, proposal: Assignment, provider: Provider, wanted: int) -> str | None:
    """Why a proposal can no longer become an offer: the request, the provider or the pair."""
    request, _ = facts.requests[proposal.request_id]
    if request.status not in MATCHABLE:
        return f"the request is {request.status.value}"
    if (live := facts.live.get(request.id)) is not None:
        return f"the request already has open assignment {live.id} ({live.status.value})"
    if not provider.active:
        return f"provider {provider.id} is not active"
    if provider.vetting != Vetting.APPROVED:
        return f"provider {provider.id} is not vetted ({provider.vetting.value})"
    free = provider.capacity - facts.load.get(provider.id, 0)
    if wanted > free:
        return f"provider {provider.id} has no free capacity: {max(free, 0)} slot(s) for {wanted}"
    if (provider.id, request.enterprise_id) in facts.conflicts:
        return "the provider declared a conflict of interest with this enterprise"
    if {
        (provider.id, "request", request.id),
        (provider.id, "enterprise", request.enterprise_id),
    } & facts.excluded:
        return "this pair is forbidden by an exclusion"
    return None


def _check_draft(
    session: Session, proposals: Sequence[Assignment], providers: dict[int, Provider]
) -> _Facts:
    """409 naming every proposal that no longer fits; nothing has been changed yet."""
    facts = _facts(session, proposals)
    wanted = Counter(p.provider_id for p in proposals)
    conflicts = [
        {"request_id": p.request_id, "provider_id": p.provider_id, "reason": reason}
        for p in proposals
        if (reason := _why_not(facts, p, providers[p.provider_id], wanted[p.provider_id]))
    ]
    if conflicts:
        first = "; ".join(f"request {c['request_id']}: {c['reason']}" for c in conflicts[:3])
        raise Conflict(
            f"{len(conflicts)} proposal(s) can no longer be offered, nothing was published: "
            f"{first}",
            conflicts=conflicts,
        )
    return facts


def _cas(session: Session, statement: Update, expected: int) -> None:
    """A bulk compare-and-set: all rows moved, or someone changed one and we refuse (409)."""
    if session.execute(statement).rowcount != expected:  # type: ignore[attr-defined]
        raise Conflict("the draft changed while it was being published; reload and retry")


def publish(session: Session, *, principal: Principal, run: MatchRun) -> Published:
    """Turn every proposal of a succeeded draft into an offer, or none of them (409)."""
    run = _locked_run(session, run, expected=MatchRunStatus.SUCCEEDED)
    if superseded_by := run.stats.get("superseded_by_run_id"):
        raise Conflict(
            f"match run {run.id} was replaced by run {superseded_by}",
            superseded_by_run_id=superseded_by,
        )
    proposals = list(session.scalars(repository.of_run(run.id, AssignmentStatus.PROPOSED)))
    providers = {  # locked in one order (by id), so two publishes cannot deadlock
        provider_id: offers.lock_provider(session, provider_id)
        for provider_id in sorted({p.provider_id for p in proposals})
    }
    facts = _check_draft(session, proposals, providers)
    now, expires = utc_now(), utc_now() + offers.OFFER_TTL
    ids = [p.id for p in proposals]
    _cas(session, repository.offer_proposals(ids, now, expires), len(ids))
    for proposal in proposals:
        request, region = facts.requests[proposal.request_id]
        request.status = RequestStatus.MATCHED  # version-checked: a concurrent edit is a 409
        _audit_move(session, principal, proposal, region, AssignmentStatus.OFFERED)
    session.flush()
    session.expire_all()  # the bulk UPDATE bypassed the identity map
    enterprises = sorted({r.enterprise_id for r, _ in facts.requests.values()})
    plan_ids = [
        plan_service.attach_requests(session, enterprise_id=e, actor=principal).id
        for e in enterprises
    ]
    run.status, run.published_at = MatchRunStatus.PUBLISHED, now
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="match_run.published",
        entity=run,
        region_code=run.scope_region,
        after={"offered": len(ids), "plans": plan_ids},
    )
    return Published(run, ids, plan_ids)


@dataclass
class Reverted:
    run: MatchRun
    withdrawn: list[int] = field(default_factory=list)
    kept: list[Assignment] = field(default_factory=list)


def revert(session: Session, *, principal: Principal, run: MatchRun) -> Reverted:
    """Withdraw the published offers nobody accepted yet; accepted work stays (and is listed).

    The withdrawal is one ``UPDATE ... WHERE status = 'offered' RETURNING id``: an offer
    accepted a moment earlier is simply not returned, so the provider's answer wins.
    """
    run = _locked_run(session, run, expected=MatchRunStatus.PUBLISHED)
    offered = list(session.scalars(repository.of_run(run.id, AssignmentStatus.OFFERED)))
    statement = repository.withdraw_offers([a.id for a in offered], utc_now())
    withdrawn = set(session.execute(statement).scalars())
    gone = [a for a in offered if a.id in withdrawn]
    rows = session.execute(repository.requests_with_region([a.request_id for a in gone]))
    requests = {r.id: (r, region) for r, region in rows}
    for assignment in gone:
        request, region = requests[assignment.request_id]
        _audit_move(session, principal, assignment, region, AssignmentStatus.WITHDRAWN)
        if request.status == RequestStatus.MATCHED:  # back to the pool, to be matched again
            request.status = RequestStatus.TRIAGED
            _audit_move(session, principal, request, region, RequestStatus.TRIAGED)
    session.flush()
    session.expire_all()  # the bulk UPDATE bypassed the identity map
    kept = list(session.scalars(repository.of_run(run.id, *KEPT_ON_REVERT)))
    run.status, run.reverted_at = MatchRunStatus.REVERTED, utc_now()
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="match_run.reverted",
        entity=run,
        region_code=run.scope_region,
        after={"withdrawn": sorted(withdrawn), "kept": [a.id for a in kept]},
    )
    return Reverted(run, sorted(withdrawn), kept)


def _audit_move(
    session: Session,
    principal: Principal,
    entity: Assignment | HelpRequest,
    region: str,
    to: AssignmentStatus | RequestStatus,
) -> None:
    """The audit event of one row a bulk statement moved (``move`` would record it itself)."""
    kind = "assignment" if isinstance(entity, Assignment) else "request"
    event_service.record(
        session,
        actor=principal,
        action=f"{kind}.{to.value}",
        entity=entity,
        region_code=region,
        after={"status": to.value},
    )
