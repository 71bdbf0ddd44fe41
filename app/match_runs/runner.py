"""Executing one match run as a durable job: claim, snapshot, compute, write — exactly once.

A run passes through short transactions only, so a long solve never holds a lock:

1. **claim** — one ``UPDATE ... RETURNING`` takes a queued run, or a running one whose lease
   expired (its worker died), and stamps it with this worker's id and the next attempt
   number (:func:`app.match_runs.repository.claim`).
2. **snapshot** — requests, providers, loads, conflicts, exclusions and pins are read in one
   read-only transaction (``REPEATABLE READ`` on PostgreSQL, a WAL snapshot on SQLite).
3. **compute** — ``matching.check_supply`` and ``matching.match`` run outside any
   transaction while a heartbeat thread renews the lease.
4. **write** — one transaction: a fenced ``UPDATE`` proves the claim still holds (and locks
   the row), earlier drafts of the scope are superseded, the proposals are inserted and the
   run becomes ``succeeded`` with its statistics. Any failure rolls all of it back; a worker
   whose claim was taken over meanwhile finds its fence gone and writes nothing.

Every write compares ``(claimed_by, attempts)``, so of a crashed-and-reclaimed run's
workers only the current one can finish it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

import matching
from app.common.clock import utc_now
from app.db import make_session_factory
from app.events import service as event_service
from app.match_runs import encode
from app.match_runs import repository as run_repository
from app.match_runs.encode import Scope
from app.models import Assignment, AssignmentOrigin, AssignmentStatus, MatchRun, MatchRunStatus
from app.observability import metrics
from app.observability.logs import bound

logger = logging.getLogger(__name__)

STAGES = ("claim", "snapshot", "supply", "match", "write")
DEFAULT_LEASE = timedelta(seconds=60)
WRITE_BATCH = 500  # proposals flushed per INSERT batch
ProgressFn = Callable[[str, int, int, dict[str, Any]], None]  # stage, step, steps, counts


class LeaseLost(Exception):
    """Another worker holds the run now (our lease lapsed); our result must not be written."""


class InputsChanged(Exception):
    """What the run read changed in a way its result cannot absorb: compute it again."""


@dataclass(frozen=True)
class Sessions:
    """Where the runner opens its transactions: writes, and reads that need not queue."""

    write: Callable[[], Session]
    read: Callable[[], Session]


SessionSource = Engine | Callable[[], Session] | Sessions


def sessions_of(source: SessionSource) -> Sessions:
    if isinstance(source, Sessions):
        return source
    if isinstance(source, Engine):
        return Sessions(make_session_factory(source), make_session_factory(source, read_only=True))
    return Sessions(source, source)


@dataclass(frozen=True)
class Claim:
    run_id: int
    worker_id: str
    attempt: int
    lease: timedelta
    request_id: str = ""  # of the HTTP call that queued the run, for the worker's log lines

    def fence(self) -> Any:
        return run_repository.owned_by(self.run_id, self.worker_id, self.attempt)


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


def claim(
    sessions: Sessions, worker_id: str, *, lease: timedelta, run_id: int | None = None
) -> Claim | None:
    """Take the oldest claimable run (or exactly ``run_id``); ``None`` when there is none."""
    now = utc_now()
    if run_id is None:
        with sessions.read() as session, session.begin():
            if session.scalar(run_repository.has_claimable(now)) is None:
                return None
    with sessions.write() as session, session.begin():
        session.execute(run_repository.reap_abandoned(now))
        statement = run_repository.claim(
            worker_id=worker_id, now=now, lease_until=now + lease, run_id=run_id
        )
        row = session.execute(statement).first()
    if row is None:
        return None
    logger.info("worker %s claimed match run %s (attempt %s)", worker_id, row[0], row[1])
    return Claim(run_id=row[0], worker_id=worker_id, attempt=row[1], lease=lease, request_id=row[2])


def report(
    sessions: Sessions, claimed: Claim, stage: str, counts: dict[str, Any]
) -> dict[str, Any]:
    """Publish the stage reached (and renew the lease); raises :class:`LeaseLost`."""
    progress = {"stage": stage, "step": STAGES.index(stage) + 1, "steps": len(STAGES)}
    progress["counts"] = counts
    with sessions.write() as session, session.begin():
        _fenced(session, claimed, stage=stage, progress=progress)
    return progress


def _fenced(session: Session, claimed: Claim, **values: Any) -> None:
    """Compare-and-set on our claim, renewing the lease unless ``values`` sets it."""
    now = utc_now()
    values.setdefault("lease_expires_at", now + claimed.lease)
    statement = run_repository.fenced_update(claimed.fence(), now, **values)
    if session.execute(statement).rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"match run {claimed.run_id} is no longer claimed by {claimed.worker_id}")


def _consistent_read(session: Session) -> None:
    """One snapshot for every query of the read (PostgreSQL's default sees each statement's)."""
    bind = session.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )


def _one_pin_per_request(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping drafts may pin one request twice; the engine needs one pin per request."""
    chosen: dict[int, int] = {}
    for request_id, provider_id in sorted(pairs):
        if chosen.setdefault(request_id, provider_id) != provider_id:
            logger.warning(
                "request %s is pinned to several providers; keeping %s",
                request_id,
                chosen[request_id],
            )
    return sorted(chosen.items())


def read_inputs(sessions: Sessions, claimed: Claim) -> Inputs:
    start = time.perf_counter()
    with sessions.read() as session, session.begin():
        _consistent_read(session)
        run = session.get(MatchRun, claimed.run_id)
        if run is None:
            raise LeaseLost(f"match run {claimed.run_id} disappeared")
        scope = Scope(run.scope_region, tuple(run.scope_categories), tuple(run.scope_request_ids))
        weights = matching.Weights(**run.weights)
        request_ids = list(session.scalars(run_repository.request_ids_in(scope)))
        pins = _one_pin_per_request(encode.locked_pairs(session, request_ids))
        snap = encode.snapshot(session, scope, pinned=pins)
    seconds = {"snapshot": time.perf_counter() - start}
    return Inputs(scope, weights, snap, request_ids, pins, seconds)


def compute(
    inputs: Inputs,
    sessions: Sessions,
    claimed: Claim,
    stage: Callable[[str, dict[str, Any]], None] | None = None,
) -> Computed:
    """Supply check and the exact solve, outside any transaction, the lease kept alive."""
    with _heartbeat(sessions, claimed) as lost:
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


@contextmanager
def _heartbeat(sessions: Sessions, claimed: Claim) -> Iterator[threading.Event]:
    """Renew the lease every third of it while the engine runs; set the event if it is lost."""
    stop, lost = threading.Event(), threading.Event()

    def beat() -> None:
        while not stop.wait(claimed.lease.total_seconds() / 3):
            try:
                with sessions.write() as session, session.begin():
                    _fenced(session, claimed)
            except LeaseLost:
                lost.set()
                return
            except Exception:  # a blip: the next beat (or the final fence) decides
                logger.warning(
                    "lease renewal of match run %s failed", claimed.run_id, exc_info=True
                )

    thread = threading.Thread(target=beat, name=f"lease-{claimed.run_id}", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join()


def proposal_row(
    run_id: int, result: matching.MatchResult, chosen: matching.Assignment
) -> Assignment:
    """One draft assignment; pinned pairs stay locked so the next re-run keeps them too."""
    return Assignment(
        request_id=int(chosen.request),
        provider_id=int(chosen.provider),
        match_run_id=run_id,
        origin=AssignmentOrigin.MATCH_RUN,
        status=AssignmentStatus.PROPOSED,
        score=chosen.score,
        breakdown=encode.breakdown(result, int(chosen.request)),
        locked=chosen.pinned,
    )


def _write_proposals(session: Session, run_id: int, result: matching.MatchResult) -> int:
    batch: list[Assignment] = []
    for chosen in result.assignments:
        batch.append(proposal_row(run_id, result, chosen))
        if len(batch) >= WRITE_BATCH:
            session.add_all(batch)
            session.flush()
            batch = []
    session.add_all(batch)
    session.flush()
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
    stats["left_out"] = dict(inputs.snapshot.left_out)
    return stats


def _check_pins_unchanged(session: Session, inputs: Inputs) -> None:
    """A pin set or lifted after the snapshot would be lost when the old draft is cancelled."""
    now = _one_pin_per_request(encode.locked_pairs(session, inputs.request_ids))
    if now != inputs.pins:
        raise InputsChanged("pins changed while the run was computing; it will run again")


def write_result(sessions: Sessions, claimed: Claim, inputs: Inputs, computed: Computed) -> None:
    """All or nothing: proposals, superseded drafts, the final status and its audit event."""
    start = time.perf_counter()
    with sessions.write() as session, session.begin():
        _fenced(session, claimed, stage="write")  # proves the claim and locks the row
        _check_pins_unchanged(session, inputs)
        run = session.get(MatchRun, claimed.run_id, populate_existing=True)
        assert run is not None  # the fence matched it
        superseded = _supersede(session, run)
        written = _write_proposals(session, run.id, computed.result)
        stats = _stats(inputs, computed, proposals=written, superseded_run_ids=superseded)
        seconds = stats["seconds"]
        seconds["write"] = time.perf_counter() - start
        seconds["total"] = seconds.pop("total") + seconds["write"]  # listed last
        _fenced(
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


def fail(
    sessions: Sessions, claimed: Claim, error: str, *, retry: bool
) -> Literal["failed", "requeued"]:
    """Record why the run stopped: back to the queue after a transient fault, else failed."""
    again = retry and claimed.attempt < run_repository.MAX_ATTEMPTS
    values: dict[str, Any] = (
        {"status": MatchRunStatus.QUEUED, "stage": "queued", "claimed_by": ""}
        if again
        else {"status": MatchRunStatus.FAILED, "stage": "failed", "finished_at": utc_now()}
    )
    with sessions.write() as session, session.begin():
        _fenced(session, claimed, error=error[:4000], lease_expires_at=None, **values)
    return "requeued" if again else "failed"


def _transient(exc: Exception) -> bool:
    """Changed pins and database hiccups (lost connection, serialisation failure, deadlock)
    deserve another attempt; anything else would fail the same way again."""
    return isinstance(exc, InputsChanged | OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def execute(sessions: Sessions, claimed: Claim, progress: ProgressFn | None = None) -> Processed:
    """Run the claimed job to its end. Failures are recorded on the run, not raised; only a
    database that cannot record them escapes (the lease then expires and the run is retaken)."""

    def stage(name: str, counts: dict[str, Any]) -> None:
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
            outcome = fail(sessions, claimed, message, retry=_transient(exc))
        except LeaseLost:
            return Processed(claimed.run_id, "lease_lost")
        return Processed(claimed.run_id, outcome)
    metrics.observe_run_stages(inputs.seconds | computed.seconds | {"write": write_seconds})
    if progress is not None:
        progress("done", len(STAGES), len(STAGES), {"proposals": len(computed.result.assignments)})
    return Processed(claimed.run_id, "succeeded")


def release(sessions: Sessions, claimed: Claim) -> bool:
    """Hand a run we cannot finish (shutting down) back to the queue at once, instead of
    leaving it to the lease's expiry. Fenced: if another worker took it over meanwhile nothing
    changes, and our own compute, should it still finish, finds its fence gone and writes
    nothing. The attempt stays counted, so the fence of this claim can never match again."""
    try:
        with sessions.write() as session, session.begin():
            _fenced(
                session,
                claimed,
                status=MatchRunStatus.QUEUED,
                stage="queued",
                claimed_by="",
                lease_expires_at=None,
            )
    except LeaseLost:
        return False
    logger.info("match run %s released by %s", claimed.run_id, claimed.worker_id)
    return True


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
