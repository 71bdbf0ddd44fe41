"""Use cases on match runs: trigger, read, and diff against what is live.

The computation itself belongs to :mod:`app.match_runs.runner` (a worker owns those
transactions); publishing and reverting live in :mod:`app.match_runs.publishing`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.assignments.schemas import UnmatchedReasonRead
from app.bundling import preparation
from app.common.clock import utc_now
from app.common.pagination import PageParams, encode_cursor, page_sequence, paginate
from app.common.principal import Principal
from app.common.schemas import Page
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.events import service as event_service
from app.match_runs import repository
from app.match_runs.schemas import (
    AdviceRead,
    ChangeKind,
    DiffRow,
    MatchRunCreate,
    MatchRunDiff,
    MatchRunRead,
)
from app.models import (
    Assignment,
    AssignmentStatus,
    MatchRun,
    MatchRunStatus,
)
from app.observability.logs import current_request_id
from app.taxonomy import service as taxonomy_service
from matching.explaining.advice import messages as advice_messages

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
    stuck = _fail_stuck(session, principal, data.scope_region)
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
        stats={"replaced_stuck_run_ids": stuck} if stuck else {},
        request_id=current_request_id() or "",
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


def _fail_stuck(session: Session, principal: Principal | None, region: str) -> list[int]:
    """A run no worker will finish (queued too long, lease expired) must not block its scope:
    it is failed, with the reason, and the new run takes its place."""
    stuck = sorted(session.scalars(repository.fail_stuck_in_scope(region, utc_now())).all())
    for run_id in stuck:
        run = session.get(MatchRun, run_id, populate_existing=True)
        assert run is not None  # just updated under the scope lock
        event_service.record(
            session,
            actor=principal,
            action="match_run.failed",
            entity=run,
            region_code=run.scope_region,
            after={"error": run.error},
        )
    return stuck


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
    found = paginate(session, statement, MatchRun.id, page, MatchRunRead.model_validate)
    with_preparation(session, found.items)
    return found


def read(session: Session, run: MatchRun) -> MatchRunRead:
    """The run as the API shows it, with its publish's preparation progress."""
    shown = MatchRunRead.model_validate(run)
    with_preparation(session, [shown])
    return shown


def with_preparation(session: Session, runs: Sequence[MatchRunRead]) -> None:
    """Fill in how many plans each run's publish still waits for (one grouped count, only
    for runs that deferred any: the others' 0 is known without a query)."""
    deferred = {r.id: r for r in runs if r.stats is not None and r.stats.plans_to_prepare}
    for run_id, pending in preparation.awaiting_by_run(session, list(deferred)).items():
        deferred[run_id].plans_awaiting_preparation = pending


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
        unmatched=UnmatchedReasonRead.model_validate(unmatched) if unmatched else None,
    )


def diff(
    session: Session, *, run: MatchRun, kind: ChangeKind | None, page: PageParams
) -> MatchRunDiff:
    """Per request the run decided: the live provider now against the proposed one."""
    if run.status in (MatchRunStatus.QUEUED, MatchRunStatus.RUNNING, MatchRunStatus.FAILED):
        raise Conflict(f"match run {run.id} is {run.status.value}; it has no draft to compare")
    teams: dict[int, list[Assignment]] = defaultdict(list)
    for assignment in session.scalars(repository.of_run(run.id)):
        teams[assignment.request_id].append(assignment)
    proposed = {r: members[-1] for r, members in teams.items()}
    unmatched = {int(u["request_id"]): u for u in run.stats.get("unmatched_requests", [])}
    request_ids = sorted(set(proposed) | set(unmatched))
    live: dict[int, Assignment] = {}
    live_teams: dict[int, list[Assignment]] = defaultdict(list)
    for assignment in session.scalars(repository.live_for(request_ids)):
        live.setdefault(assignment.request_id, assignment)
        live_teams[assignment.request_id].append(assignment)
    rows = [
        _with_team(
            _diff_row(r, live.get(r), proposed.get(r), unmatched.get(r)),
            live_teams.get(r, []),
            teams.get(r, []),
        )
        for r in request_ids
    ]
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


def _with_team(row: DiffRow, live: list[Assignment], mine: list[Assignment]) -> DiffRow:
    """A team request (several live or proposed providers) lists them all, and compares the
    two teams as sets: same members is ``same``, any other difference ``changed``."""
    if len(live) <= 1 and len(mine) <= 1:
        return row
    proposed = sorted(a.provider_id for a in mine if a.status not in ENDED)
    current = sorted(a.provider_id for a in live)
    kind = row.kind
    if current and proposed:
        kind = "same" if current == proposed else "changed"
    return row.model_copy(
        update={
            "kind": kind,
            "live_team_provider_ids": current,
            "proposed_team_provider_ids": proposed,
        }
    )


# -- recruitment advice ------------------------------------------------------------------


def _overlaps(principal: Principal, region: str) -> bool:
    """A cell concerns a coordinator when it and one of their prefixes nest either way."""
    if principal.is_admin:
        return True
    return any(region.startswith(p) or p.startswith(region) for p in principal.region_prefixes)


def advice(
    session: Session, *, principal: Principal, run: MatchRun, page: PageParams
) -> Page[AdviceRead]:
    """The run's recruitment advice, best cell first, worded with the taxonomy's labels.

    Computed by the engine with the run (exact least dual prices of the solved problem) and
    stored in its statistics, so it describes the run as solved, whatever changed since.
    """
    if run.status != MatchRunStatus.SUCCEEDED:
        raise Conflict(f"match run {run.id} is {run.status}: advice comes with its result")
    labels = {c.key: (c.name_zh, c.name_en) for c in taxonomy_service.list_categories(session)}
    items = []
    for row in (run.stats or {}).get("advice", []):
        if not _overlaps(principal, row["region"]):
            continue
        label = labels.get(row["category"], (row["category"], row["category"]))
        zh, en = advice_messages(
            label,
            row["region"],
            row["providers_needed"],
            row["slots_needed"],
            row["requests"],
            row["marginal_score"],
        )
        items.append(AdviceRead.model_validate(row | {"message_zh": zh, "message_en": en}))
    return page_sequence(items, key=lambda a: a.rank, params=page)
