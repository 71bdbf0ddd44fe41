"""The compute half of a match run's execution: snapshot, compute, write — exactly once.

The worker first claims the run (:mod:`app.match_runs.claims`: lease, fence, heartbeat);
then it passes through short transactions only, so a long solve never holds a lock:

1. **snapshot** — requests, providers, loads, conflicts, exclusions and pins are read in one
   read-only transaction (``REPEATABLE READ`` on PostgreSQL, a WAL snapshot on SQLite).
2. **compute** — ``matching.check_supply`` and ``matching.match`` run outside any
   transaction while a heartbeat thread renews the lease.
3. **write** — one transaction: a fenced ``UPDATE`` proves the claim still holds (and locks
   the row), earlier drafts of the scope are superseded, the proposals are inserted and the
   run becomes ``succeeded`` with its statistics. Any failure rolls all of it back; a worker
   whose claim was taken over meanwhile finds its fence gone and writes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, Table
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

import matching
from app.assignments import encode
from app.assignments import unmatched as unmatched_store
from app.assignments.encode import Scope
from app.common.bulk import insert_rows, refresh_planner_statistics
from app.common.clock import utc_now
from app.common.collector import paused
from app.events import service as event_service
from app.match_runs import repository as run_repository
from app.match_runs.claims import (
    DEFAULT_LEASE,
    STAGES,
    Claim,
    LeaseLost,
    Sessions,
    SessionSource,
    claim,
    fail,
    fenced,
    heartbeat,
    report,
    sessions_of,
)
from app.models import Assignment, AssignmentOrigin, AssignmentStatus, MatchRun, MatchRunStatus
from app.observability import metrics
from app.observability.logs import bound

logger = logging.getLogger(__name__)

BULK_ROWS = 1000  # a write this large refreshes the planner statistics of its table
WRITE_BATCH = 5000  # proposals built and sent per COPY / executemany batch
ProgressFn = Callable[[str, int, int, dict[str, Any]], None]  # stage, step, steps, counts


class InputsChanged(Exception):
    """What the run read changed in a way its result cannot absorb: compute it again."""


@dataclass
class Inputs:
    """The run's frozen view of the world, read in one transaction."""

    scope: Scope
    weights: matching.Weights
    snapshot: encode.Snapshot
    request_ids: list[int]
    pins: list[tuple[int, int]]
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Computed:
    result: matching.MatchResult
    shortages: tuple[matching.Shortage, ...]
    seconds: dict[str, float]


@dataclass(frozen=True)
class Processed:
    run_id: int
    outcome: Literal["succeeded", "failed", "requeued", "lease_lost"]


# -- the steps ---------------------------------------------------------------------------


def _consistent_read(session: Session) -> None:
    """One snapshot for every query of the read (PostgreSQL's default sees each statement's)."""
    bind = session.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )


def _one_pin_per_request(session: Session, pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping drafts may pin one request twice; the engine takes one pin per request
    (one per empty seat of a team request), the lowest provider ids first."""
    seats = encode.seats(session, sorted({r for r, _ in pairs}))
    chosen: dict[int, list[int]] = defaultdict(list)
    for request_id, provider_id in sorted(set(pairs)):
        if len(chosen[request_id]) < seats.get(request_id, 1):
            chosen[request_id].append(provider_id)
        else:
            logger.warning(
                "request %s is pinned to more providers than it wants; keeping %s",
                request_id,
                chosen[request_id],
            )
    return sorted((r, p) for r, ps in chosen.items() for p in ps)


def read_inputs(sessions: Sessions, claimed: Claim) -> Inputs:
    start = time.perf_counter()
    with paused(), sessions.read() as session, session.begin():
        _consistent_read(session)
        run = session.get(MatchRun, claimed.run_id)
        if run is None:
            raise LeaseLost(f"match run {claimed.run_id} disappeared")
        scope = Scope(run.scope_region, tuple(run.scope_categories), tuple(run.scope_request_ids))
        weights = matching.Weights(**run.weights)
        request_ids = list(session.scalars(run_repository.request_ids_in(scope)))
        pins = _one_pin_per_request(session, encode.locked_pairs(session, request_ids))
        snap = encode.snapshot(session, scope, pinned=pins)
    seconds = {"snapshot": time.perf_counter() - start}
    return Inputs(scope, weights, snap, request_ids, pins, seconds)


def compute(
    inputs: Inputs,
    sessions: Sessions,
    claimed: Claim,
    stage: Callable[[str, dict[str, Any]], None] | None = None,
) -> Computed:
    """Supply check and the exact solve, outside any transaction, the lease kept alive.

    The cyclic collector is paused here too, as for the snapshot and the write: the engine
    allocates hundreds of thousands of short-lived objects at 10k x 10k (text tokens,
    candidate lists) and leaves no cycles worth collecting, while the collector's 400-odd
    passes took 0.2-0.4 s of a 3-4 s solve in a fresh process (``bench/service.py`` times
    the bare solve both ways; peak RSS moved by 1 % at 100k). In the embedded worker the
    pause covers the API's threads for the solve's seconds too: reference counting still
    frees their garbage, and the collector catches up once the pause ends."""
    with paused(), heartbeat(sessions, claimed) as lost:
        start = time.perf_counter()
        shortages = tuple(matching.check_supply(inputs.snapshot.problem))
        supply_seconds = time.perf_counter() - start
        if stage is not None:
            stage("match", {"shortages": len(shortages)})
        result = matching.match(inputs.snapshot.problem, inputs.weights)
    if lost.is_set():
        raise LeaseLost(f"match run {claimed.run_id}: lease lost while computing")
    seconds = {"supply": supply_seconds, **dict(result.stats.seconds)}
    seconds["engine"] = seconds.pop("total", 0.0)
    return Computed(result, shortages, seconds)


def proposal_row(
    run_id: int, result: matching.MatchResult, chosen: matching.Assignment, now: datetime
) -> dict[str, Any]:
    """One draft assignment's column values; pinned pairs stay locked so the next re-run
    keeps them too."""
    return {
        "request_id": int(chosen.request),
        "provider_id": int(chosen.provider),
        "match_run_id": run_id,
        "origin": AssignmentOrigin.MATCH_RUN,
        "status": AssignmentStatus.PROPOSED,
        "score": float(chosen.score),
        "breakdown": encode.breakdown(result, int(chosen.request), int(chosen.provider)),
        "locked": bool(chosen.pinned),
        "decline_reason_code": "",
        "decline_reason": "",
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def _write_proposals(session: Session, run_id: int, result: matching.MatchResult) -> int:
    """COPY (PostgreSQL) or executemany batches of ``WRITE_BATCH`` rows: no statement's size
    depends on the run's."""
    table = Assignment.__table__
    assert isinstance(table, Table)  # one table per model
    now = utc_now()
    batch: list[dict[str, Any]] = []
    for chosen in result.assignments:
        batch.append(proposal_row(run_id, result, chosen, now))
        if len(batch) >= WRITE_BATCH:
            insert_rows(session, table, batch)
            batch = []
    insert_rows(session, table, batch)
    if len(result.assignments) >= BULK_ROWS:
        # Publish reads these rows next; with statistics from before they existed the planner
        # picks plans that outlive the statement timeout at province scale.
        refresh_planner_statistics(session, ["assignments"])
    return len(result.assignments)


def _supersede(session: Session, run: MatchRun) -> list[int]:
    """Cancel the proposals of the scope's earlier unpublished drafts: this run replaces them."""
    drafts = list(session.scalars(run_repository.earlier_drafts(run)))
    if not drafts:
        return []
    ids = [d.id for d in drafts]
    session.execute(run_repository.cancel_proposals(ids, utc_now()))
    for draft in drafts:
        draft.stats = {**draft.stats, "superseded_by_run_id": run.id}
    session.flush()
    return ids


def _stats(inputs: Inputs, computed: Computed, **extra: Any) -> dict[str, Any]:
    """The run's statistics: the engine's, the supply shortages, and seconds per stage."""
    stats = dataclasses.asdict(computed.result.stats) | extra
    stats["unmatched_by_reason"] = dict(computed.result.stats.unmatched_by_reason)
    seconds = stats["seconds"] = {**inputs.seconds, **computed.seconds}
    seconds["total"] = sum(seconds.get(k, 0.0) for k in ("snapshot", "supply", "engine"))
    stats["shortages"] = [
        {**dataclasses.asdict(s), "shortfall": s.shortfall} for s in computed.shortages
    ]
    stats["unmatched_requests"] = encode.unmatched_rows(computed.result)
    stats["advice"] = encode.advice_rows(computed.result)
    stats["short_teams"] = len(computed.result.short) - computed.result.stats.unmatched
    stats["left_out"] = dict(inputs.snapshot.left_out)
    return stats


def _check_pins_unchanged(session: Session, inputs: Inputs) -> None:
    """A pin set or lifted after the snapshot would be lost when the old draft is cancelled."""
    now = _one_pin_per_request(session, encode.locked_pairs(session, inputs.request_ids))
    if now != inputs.pins:
        raise InputsChanged("pins changed while the run was computing; it will run again")


def write_result(sessions: Sessions, claimed: Claim, inputs: Inputs, computed: Computed) -> None:
    """All or nothing: proposals, superseded drafts, the final status and its audit event."""
    start = time.perf_counter()
    with paused(), sessions.write() as session, session.begin():
        fenced(session, claimed, stage="write")  # proves the claim and locks the row
        _check_pins_unchanged(session, inputs)
        run = session.get(MatchRun, claimed.run_id, populate_existing=True)
        assert run is not None  # the fence matched it
        superseded = _supersede(session, run)
        written = _write_proposals(session, run.id, computed.result)
        unmatched_store.record(
            session,
            source=unmatched_store.RUN,
            decided=[int(r) for r in inputs.snapshot.problem.requests.id],
            unmatched=computed.result.unmatched,
            run_id=run.id,
        )
        stats = _stats(inputs, computed, proposals=written, superseded_run_ids=superseded)
        stats = {**run.stats, **stats}  # keeps what the trigger noted (stuck runs it replaced)
        seconds = stats["seconds"]
        seconds["write"] = time.perf_counter() - start
        seconds["total"] = seconds.pop("total") + seconds["write"]  # listed last
        fenced(
            session,
            claimed,
            status=MatchRunStatus.SUCCEEDED,
            stage="done",
            progress={"stage": "done", "step": len(STAGES), "steps": len(STAGES)},
            stats=stats,
            finished_at=utc_now(),
            lease_expires_at=None,
        )
        event_service.record(
            session,
            actor=None,
            action="match_run.succeeded",
            entity=run,
            region_code=run.scope_region,
            after={"proposals": written, "unmatched": stats["unmatched"], "superseded": superseded},
        )


_RETRYABLE_SQLSTATE_CLASSES = ("08", "40", "53", "57")  # connection, rollback, resources, shutdown
_RETRYABLE_SQLSTATES = ("55P03",)  # lock not available


def transient(exc: BaseException) -> bool:
    """Whether another attempt could succeed: changed pins, a lost connection, a serialisation
    failure or deadlock, a busy database. Anything else — a statement the server refuses, a
    bug, bad input — would fail the same way again, so the run fails at once with the error
    instead of blocking its scope through three doomed attempts."""
    if isinstance(exc, InputsChanged):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if code:
        return code[:2] in _RETRYABLE_SQLSTATE_CLASSES or code in _RETRYABLE_SQLSTATES
    message = str(exc.orig).lower()  # SQLite has no SQLSTATE
    return isinstance(exc, OperationalError) and ("locked" in message or "busy" in message)


def execute(sessions: Sessions, claimed: Claim, progress: ProgressFn | None = None) -> Processed:
    """Run the claimed job to its end. Failures are recorded on the run, not raised; only a
    database that cannot record them escapes (the lease then expires and the run is retaken)."""

    reached = ["claim"]

    def stage(name: str, counts: dict[str, Any]) -> None:
        reached.append(name)
        state = report(sessions, claimed, name, counts)
        if progress is not None:
            progress(name, state["step"], state["steps"], counts)

    try:
        stage("snapshot", {})
        inputs = read_inputs(sessions, claimed)
        problem = inputs.snapshot.problem
        counts = {"requests": len(problem.requests), "providers": len(problem.providers)}
        stage("supply", counts | {"pins": len(inputs.pins)})
        computed = compute(inputs, sessions, claimed, stage)
        stage("write", {"proposals": len(computed.result.assignments)})
        started_write = time.perf_counter()
        write_result(sessions, claimed, inputs, computed)
        write_seconds = time.perf_counter() - started_write
    except LeaseLost as exc:
        logger.warning("%s; leaving the run to its current worker", exc)
        return Processed(claimed.run_id, "lease_lost")
    except Exception as exc:
        if not isinstance(exc, matching.MatchingError):
            logger.exception("match run %s failed", claimed.run_id)
        message = f"{type(exc).__name__}: {exc}"
        try:
            outcome = fail(sessions, claimed, message, retry=transient(exc), stage=reached[-1])
        except LeaseLost:
            return Processed(claimed.run_id, "lease_lost")
        return Processed(claimed.run_id, outcome)
    metrics.observe_run_stages(inputs.seconds | computed.seconds | {"write": write_seconds})
    if progress is not None:
        progress("done", len(STAGES), len(STAGES), {"proposals": len(computed.result.assignments)})
    return Processed(claimed.run_id, "succeeded")


def run_claimed(
    sessions: Sessions, claimed: Claim, progress: ProgressFn | None = None
) -> Processed:
    """Execute a claimed run with its id and originating request id on every log line."""
    with bound(run_id=claimed.run_id, request_id=claimed.request_id or None):
        processed = execute(sessions, claimed, progress)
        logger.info("match run %s %s", processed.run_id, processed.outcome)
        metrics.observe_run(processed.outcome)
        return processed


def process_next(
    source: SessionSource,
    worker_id: str,
    *,
    lease: timedelta = DEFAULT_LEASE,
    run_id: int | None = None,
    progress: ProgressFn | None = None,
) -> Processed | None:
    """Claim one run and execute it synchronously; ``None`` when nothing was claimable.

    ``zhuqi match`` calls this; tests drive it directly with an engine or a session factory.
    """
    sessions = sessions_of(source)
    claimed = claim(sessions, worker_id, lease=lease, run_id=run_id)
    if claimed is None:
        return None
    return run_claimed(sessions, claimed, progress)
