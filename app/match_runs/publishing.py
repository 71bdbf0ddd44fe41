"""Publishing a draft and taking it back: each one call, one transaction, all or nothing.

One provider over capacity, or one request that meanwhile got an offer by hand, and nothing
is published; a revert withdraws only what nobody accepted yet.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import NamedTuple

from sqlalchemy import Update
from sqlalchemy.orm import Session

from app.assignments import offers
from app.assignments.encode import MATCHABLE
from app.bundling import attach
from app.common.clock import utc_now
from app.common.collector import paused
from app.common.principal import Principal
from app.db import rows_matched
from app.errors import Conflict, NotFound
from app.events import service as event_service
from app.match_runs import repository
from app.models import (
    Assignment,
    AssignmentStatus,
    MatchRun,
    MatchRunStatus,
    RequestStatus,
    Vetting,
)

INLINE_PREPARATION_MAX = 500  # the setting's default (ZHUQI_PLAN_PREPARATION_INLINE_MAX)
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


class _Proposal(NamedTuple):
    """One proposal as publish checks it: a named tuple, built straight from its row (a
    frozen dataclass's ``__init__`` cost ~10 ms for the 3,566 rows of a 10k draft)."""

    id: int
    request_id: int
    provider_id: int
    request_status: RequestStatus
    enterprise_id: int
    region: str
    wanted: int = 1  # providers the request wants (a team when > 1)


@dataclass
class _Facts:
    """Everything publishing re-checks, read in a handful of statements joined against the
    run's own rows (no id list travels, however large the draft).

    The re-match's twin of these rules is ``bulk_offers._why_not``; here they run over the
    whole draft at once, with capacity counted for all of a provider's proposals together.
    """

    proposals: list[_Proposal]
    providers: dict[int, tuple[bool, int, Vetting]]  # provider → (active, capacity, vetting)
    live: dict[
        int, list[tuple[int, AssignmentStatus, int]]
    ]  # request → open (id, status, provider)
    load: dict[int, int]
    in_conflict: set[int]  # requests
    excluded: set[int]  # requests


def _facts(session: Session, run_id: int) -> _Facts:
    providers = {
        p: (a, c, v) for p, a, c, v in session.execute(repository.lock_proposed_providers(run_id))
    }
    live: dict[int, list[tuple[int, AssignmentStatus, int]]] = defaultdict(list)
    for request_id, assignment_id, status, provider_id in session.execute(
        repository.live_beside_proposals(run_id)
    ):
        live[request_id].append((assignment_id, status, provider_id))
    return _Facts(
        proposals=list(map(_Proposal._make, session.execute(repository.proposal_rows(run_id)))),
        providers=providers,
        live=live,
        load=dict(session.execute(repository.load_of_proposed_providers(run_id)).all()),
        in_conflict=set(session.scalars(repository.proposals_in_conflict(run_id))),
        excluded=set(session.scalars(repository.proposals_excluded(run_id))),
    )


def _team_full(facts: _Facts, proposal: _Proposal, seats_taken: int) -> str | None:
    """A single request with any open assignment, or a team whose open members plus this
    draft's proposals exceed its size or repeat a member, cannot take the proposal."""
    live = facts.live.get(proposal.request_id, [])
    if not live:
        return None
    if proposal.wanted == 1:
        return f"the request already has open assignment {live[0][0]} ({live[0][1].value})"
    if any(provider == proposal.provider_id for _, _, provider in live):
        return f"provider {proposal.provider_id} already serves this request"
    if len(live) + seats_taken > proposal.wanted:
        return f"the team is full: {len(live)} open of {proposal.wanted} wanted"
    return None


def _why_not(facts: _Facts, proposal: _Proposal, wanted: int, seats_taken: int = 1) -> str | None:
    """Why a proposal can no longer become an offer: the request, the provider or the pair.

    ``wanted`` counts the draft's proposals for the provider, ``seats_taken`` those for the
    request (several for a team)."""
    if proposal.request_status not in MATCHABLE:
        return f"the request is {proposal.request_status.value}"
    if (full := _team_full(facts, proposal, seats_taken)) is not None:
        return full
    provider = proposal.provider_id
    active, capacity, vetting = facts.providers.get(provider, (False, 0, Vetting.PENDING))
    if not active:
        return f"provider {provider} is not active"
    if vetting != Vetting.APPROVED:
        return f"provider {provider} is not vetted ({vetting.value})"
    free = capacity - facts.load.get(provider, 0)
    if wanted > free:
        return f"provider {provider} has no free capacity: {max(free, 0)} slot(s) for {wanted}"
    if proposal.request_id in facts.in_conflict:
        return "the provider declared a conflict of interest with this enterprise"
    if proposal.request_id in facts.excluded:
        return "this pair is forbidden by an exclusion"
    return None


def _check_draft(session: Session, run_id: int) -> _Facts:
    """409 naming every proposal that no longer fits; nothing has been changed yet."""
    facts = _facts(session, run_id)
    wanted = Counter(p.provider_id for p in facts.proposals)
    seats = Counter(p.request_id for p in facts.proposals)
    conflicts = [
        {"request_id": p.request_id, "provider_id": p.provider_id, "reason": reason}
        for p in facts.proposals
        if (reason := _why_not(facts, p, wanted[p.provider_id], seats[p.request_id]))
    ]
    if conflicts:
        first = "; ".join(f"request {c['request_id']}: {c['reason']}" for c in conflicts[:3])
        raise Conflict(
            f"{len(conflicts)} proposal(s) can no longer be offered, nothing was published: "
            f"{first}",
            conflicts=conflicts,
        )
    return facts


def _complete_requests(facts: _Facts) -> list[int]:
    """Requests this publish gives every provider they want: they become ``matched``. A
    team still short of members stays ``triaged``, so the next run or re-match fills the
    empty seats (its offered members keep theirs)."""
    seats = Counter(p.request_id for p in facts.proposals)
    wanted = {p.request_id: p.wanted for p in facts.proposals}
    return sorted(r for r, n in seats.items() if n + len(facts.live.get(r, ())) >= wanted[r])


def _cas(session: Session, statement: Update, expected: int) -> None:
    """A bulk compare-and-set: all rows moved, or someone changed one and we refuse (409)."""
    if rows_matched(session, statement) != expected:
        raise Conflict("the draft changed while it was being published; reload and retry")


def _offer(
    session: Session,
    principal: Principal,
    run_id: int,
    expected: int,
    now: datetime,
    expires: datetime,
) -> None:
    """Every proposal of the run becomes an offer, each with the audit event ``_moved``
    would record, or 409. On PostgreSQL one statement does both (the ``UPDATE`` feeds the
    events' ``INSERT`` through a ``WITH``: no second scan of the run's rows, no second
    round trip); SQLite, which has no ``UPDATE`` in a ``WITH``, selects the offers after
    moving them."""
    offered = AssignmentStatus.OFFERED.value
    record = partial(
        event_service.record_selected,
        session,
        actor=principal,
        action=f"assignment.{offered}",
        entity_type="assignments",
    )
    audit = (event_service.json_value(None), event_service.json_value({"status": offered}))
    if session.get_bind().dialect.name != "postgresql":
        _cas(session, repository.offer_proposals(run_id, now, expires), expected)
        record(rows=repository.offers_of_run(run_id).add_columns(*audit))
    elif record(rows=repository.offered_now(run_id, now, expires).add_columns(*audit)) != expected:
        raise Conflict("the draft changed while it was being published; reload and retry")


def publish(
    session: Session,
    *,
    principal: Principal,
    run: MatchRun,
    inline_max: int = INLINE_PREPARATION_MAX,
) -> Published:
    """Turn every proposal of a succeeded draft into an offer, or none of them (409).

    Set-based throughout: one ``UPDATE`` offers the whole draft, one moves its requests to
    ``matched`` and links them to their plans (their rows were locked when checked), audit
    events and plans are written in bulk, so publishing costs a small multiple of what
    writing the draft did, not a round trip per row. More than ``inline_max`` plans are only
    created, linked and marked here; the worker prepares them after the commit
    (:mod:`app.bundling.preparation`), and the run's ``stats`` say how many it owes.

    The cyclic garbage collector is paused throughout, as for the run's own write stage
    (:mod:`app.common.collector`): a 10k publish reads and builds tens of thousands of rows
    and tuples in bursts, and one oldest-generation pass over a serving process's objects
    cost 0.3-0.5 s of a ~1.5 s publish.
    """
    with paused():
        return _publish(session, principal=principal, run=run, inline_max=inline_max)


def _publish(
    session: Session, *, principal: Principal, run: MatchRun, inline_max: int
) -> Published:
    run = _locked_run(session, run, expected=MatchRunStatus.SUCCEEDED)
    if superseded_by := run.stats.get("superseded_by_run_id"):
        raise Conflict(
            f"match run {run.id} was replaced by run {superseded_by}",
            superseded_by_run_id=superseded_by,
        )
    facts = _check_draft(session, run.id)
    proposals = facts.proposals
    now, expires = utc_now(), utc_now() + offers.OFFER_TTL
    _offer(session, principal, run.id, len(proposals), now, expires)
    complete = _complete_requests(facts)
    session.expire_all()  # the bulk UPDATEs bypassed the identity map
    attached = attach.attach_and_move(  # complete requests → matched in the UPDATE linking them
        session,
        enterprise_ids=[p.enterprise_id for p in proposals],
        actor=principal,
        move=attach.StatusMove(complete, MATCHABLE, RequestStatus.MATCHED),
        defer=attach.Deferral(run.id, inline_max),
    )
    if attached.moved != complete:  # locked and checked above: a guard, not a race
        raise Conflict("the draft changed while it was being published; reload and retry")
    plan_ids = sorted(set(attached.plans.values()))
    run.status, run.published_at = MatchRunStatus.PUBLISHED, now
    if attached.deferred:  # a new dict: the JSON column only sees a replaced value
        run.stats = {**run.stats, "plans_to_prepare": len(plan_ids)}
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="match_run.published",
        entity=run,
        region_code=run.scope_region,
        after={
            "offered": len(proposals),
            "plans": len(plan_ids),
            "plans_prepared_later": attached.deferred,
        },
    )
    return Published(run, [p.id for p in proposals], plan_ids)


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
    now = utc_now()
    gone = session.execute(repository.withdraw_offers(run.id, now)).all()
    back = session.scalars(  # back to the pool, to be matched again
        repository.mark_requests(  # in progress: a team whose other members work on
            [r for _, r in gone],
            (RequestStatus.MATCHED, RequestStatus.IN_PROGRESS),
            RequestStatus.TRIAGED,
            now,
        )
    ).all()
    regions = dict(session.execute(repository.regions_of_requests([r for _, r in gone])).all())
    event_service.record_many(
        session,
        actor=principal,
        changes=[
            *(_moved(a, regions.get(r, ""), AssignmentStatus.WITHDRAWN) for a, r in gone),
            *(_moved(r, regions.get(r, ""), RequestStatus.TRIAGED) for r in back),
        ],
    )
    session.expire_all()  # the bulk UPDATEs bypassed the identity map
    kept = list(session.scalars(repository.of_run(run.id, *KEPT_ON_REVERT)))
    run.status, run.reverted_at = MatchRunStatus.REVERTED, utc_now()
    session.flush()
    withdrawn = sorted(a for a, _ in gone)
    event_service.record(
        session,
        actor=principal,
        action="match_run.reverted",
        entity=run,
        region_code=run.scope_region,
        after={"withdrawn": len(withdrawn), "kept": [a.id for a in kept]},
    )
    return Reverted(run, withdrawn, kept)


def _moved(
    entity_id: int, region: str, to: AssignmentStatus | RequestStatus
) -> event_service.Change:
    """The audit event of one row a bulk statement moved (``move`` would record it itself)."""
    kind = "assignment" if isinstance(to, AssignmentStatus) else "request"
    return event_service.Change(
        action=f"{kind}.{to.value}",
        entity_type=f"{kind}s" if kind == "assignment" else "help_requests",
        entity_id=entity_id,
        region_code=region,
        after={"status": to.value},
    )
