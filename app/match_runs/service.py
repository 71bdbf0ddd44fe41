"""Use cases on match runs: trigger, read, diff against what is live, publish, revert.

The computation itself belongs to :mod:`app.match_runs.runner` (a worker owns those
transactions). Everything here runs inside the caller's one transaction and only flushes, so
a publish or a revert is all or nothing: one provider over capacity, or one request that
meanwhile got an offer by hand, and nothing is published.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Update
from sqlalchemy.orm import Session

from app.assignments import offers
from app.auth.principal import Principal
from app.common.clock import utc_now
from app.common.pagination import PageParams, encode_cursor, paginate
from app.common.schemas import Page
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.events import service as event_service
from app.match_runs import repository
from app.match_runs.encode import MATCHABLE
from app.match_runs.schemas import ChangeKind, DiffRow, MatchRunCreate, MatchRunDiff, MatchRunRead
from app.models import (
    Assignment,
    AssignmentStatus,
    HelpRequest,
    MatchRun,
    MatchRunStatus,
    Provider,
    RequestStatus,
)
from app.plans import service as plan_service
from app.taxonomy import service as taxonomy_service

KEPT_ON_REVERT = (AssignmentStatus.ACCEPTED, AssignmentStatus.ACTIVE, AssignmentStatus.COMPLETED)
ENDED = (
    AssignmentStatus.CANCELLED,
    AssignmentStatus.WITHDRAWN,
    AssignmentStatus.DECLINED,
    AssignmentStatus.EXPIRED,
)


def _authorise_scope(principal: Principal | None, region: str) -> None:
    """Coordinators run matches only inside their regions; ``None`` is the operator's CLI."""
    if principal is None or principal.is_admin:
        return
    if not region or not principal.covers_region(region):
        mine = ", ".join(principal.region_prefixes) or "none"
        raise Forbidden(f"scope_region must lie inside your regions ({mine})", field="scope_region")


def _check_request_ids(session: Session, principal: Principal | None, ids: Sequence[int]) -> None:
    if not ids or principal is None:
        return
    seen = set(session.scalars(repository.visible_request_ids(principal, ids)))
    missing = sorted(set(ids) - seen)
    if missing:
        shown = ", ".join(map(str, missing[:10]))
        raise InvalidInput(f"unknown help requests: {shown}", field="scope_request_ids")


def create(session: Session, *, principal: Principal | None, data: MatchRunCreate) -> MatchRun:
    """Queue a run for a worker; 409 naming the run still active on the same scope."""
    _authorise_scope(principal, data.scope_region)
    taxonomy_service.ensure_known(session, data.scope_categories, field="scope_categories")
    _check_request_ids(session, principal, data.scope_request_ids)
    repository.lock_scope(session, data.scope_region)
    active = session.scalar(repository.active_in_scope(data.scope_region))
    if active is not None:
        raise Conflict(
            f"match run {active.id} of this scope is still {active.status.value}; "
            "wait for it to finish",
            field="scope_region",
            running_run_id=active.id,
        )
    run = MatchRun(
        created_by_id=principal.user_id if principal else None,
        scope_region=data.scope_region,
        scope_categories=sorted(set(data.scope_categories)),
        scope_request_ids=sorted(set(data.scope_request_ids)),
        weights=data.weights,
        status=MatchRunStatus.QUEUED,
        stage="queued",
        progress={"stage": "queued", "step": 0},
        stats={},
    )
    session.add(run)
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="match_run.created",
        entity=run,
        region_code=run.scope_region,
    )
    return run


def get(session: Session, *, principal: Principal, run_id: int) -> MatchRun:
    """A run outside the principal's regions does not exist for them (404, not 403)."""
    found = session.scalar(repository.visible_to(principal).where(MatchRun.id == run_id))
    if found is None:
        raise NotFound(f"match run {run_id} not found")
    return found


def list_(
    session: Session,
    *,
    principal: Principal,
    filters: repository.MatchRunFilter,
    page: PageParams,
) -> Page[MatchRunRead]:
    statement = repository.filtered(repository.visible_to(principal), filters)
    return paginate(session, statement, MatchRun.id, page, MatchRunRead.model_validate)


# -- diff --------------------------------------------------------------------------------


def _kind(live: Assignment | None, proposed: Assignment | None) -> ChangeKind:
    if live is None:
        return "unmatched" if proposed is None else "new"
    if proposed is None:
        return "dropped"
    return "same" if live.provider_id == proposed.provider_id else "changed"


def _diff_row(
    request_id: int,
    live: Assignment | None,
    mine: Assignment | None,
    unmatched: dict[str, object] | None,
) -> DiffRow:
    """``mine`` is the run's row for the request; once it has ended (cancelled by a newer
    draft or an exclusion, withdrawn, declined, expired) the run no longer proposes it."""
    proposed = mine if mine is not None and mine.status not in ENDED else None
    explained: dict[str, object] = dict(proposed.breakdown) if proposed else dict(unmatched or {})
    if mine is not None and proposed is None:
        explained = {
            "reason_en": f"the run's proposal is {mine.status.value}",
            "reason_zh": f"本次方案中的匹配已失效({mine.status.value})",
        }
    return DiffRow(
        request_id=request_id,
        kind=_kind(live, proposed),
        live_provider_id=live.provider_id if live else None,
        live_assignment_id=live.id if live else None,
        live_status=live.status if live else None,
        proposed_provider_id=mine.provider_id if mine else None,
        proposed_assignment_id=mine.id if mine else None,
        proposed_status=mine.status if mine else None,
        score=mine.score if mine else None,
        locked=bool(mine and mine.locked),
        explanation_en=str(explained.get("reason_en") or explained.get("message_en") or ""),
        explanation_zh=str(explained.get("reason_zh") or explained.get("message_zh") or ""),
    )


def diff(
    session: Session, *, run: MatchRun, kind: ChangeKind | None, page: PageParams
) -> MatchRunDiff:
    """Per request the run decided: the live provider now against the proposed one."""
    if run.status in (MatchRunStatus.QUEUED, MatchRunStatus.RUNNING, MatchRunStatus.FAILED):
        raise Conflict(f"match run {run.id} is {run.status.value}; it has no draft to compare")
    proposed = {a.request_id: a for a in session.scalars(repository.of_run(run.id))}
    unmatched = {int(u["request_id"]): u for u in run.stats.get("unmatched_requests", [])}
    request_ids = sorted(set(proposed) | set(unmatched))
    live: dict[int, Assignment] = {}
    for assignment in session.scalars(repository.live_for(request_ids)):
        live.setdefault(assignment.request_id, assignment)
    rows = [_diff_row(r, live.get(r), proposed.get(r), unmatched.get(r)) for r in request_ids]
    counts = dict(Counter(row.kind for row in rows))
    chosen = [
        r
        for r in rows
        if (kind is None or r.kind == kind)
        and (page.after_id is None or r.request_id > page.after_id)
    ]
    items = chosen[: page.limit]
    more = len(chosen) > page.limit
    cursor = encode_cursor(items[-1].request_id) if more and items else None
    return MatchRunDiff(run_id=run.id, counts=counts, items=items, next_cursor=cursor)


# -- publish and revert ------------------------------------------------------------------


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
