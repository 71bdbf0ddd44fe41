"""The lease half of a match run's execution: claim, fence, heartbeat, report, fail.

A run passes through short transactions only, so a long solve never holds a lock. The claim
is one ``UPDATE ... RETURNING`` that takes a queued run, or a running one whose lease expired
(its worker died), and stamps it with this worker's id and the next attempt number
(:func:`app.match_runs.repository.claim`). Every later write compares ``(claimed_by,
attempts)`` — the fence — so of a crashed-and-reclaimed run's workers only the current one
can finish it. What the claimed worker computes and writes is :mod:`app.match_runs.runner`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.db import make_session_factory, rows_matched
from app.events import service as event_service
from app.match_runs import repository as run_repository
from app.models import MatchRun, MatchRunStatus

logger = logging.getLogger(__name__)

STAGES = ("claim", "snapshot", "supply", "match", "write")
DEFAULT_LEASE = timedelta(seconds=60)


class LeaseLost(Exception):
    """Another worker holds the run now (our lease lapsed); our result must not be written."""


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
        fenced(session, claimed, stage=stage, progress=progress)
    return progress


def fenced(session: Session, claimed: Claim, **values: Any) -> None:
    """Compare-and-set on our claim, renewing the lease unless ``values`` sets it."""
    now = utc_now()
    values.setdefault("lease_expires_at", now + claimed.lease)
    statement = run_repository.fenced_update(claimed.fence(), now, **values)
    if rows_matched(session, statement) != 1:
        raise LeaseLost(f"match run {claimed.run_id} is no longer claimed by {claimed.worker_id}")


@contextmanager
def heartbeat(sessions: Sessions, claimed: Claim) -> Iterator[threading.Event]:
    """Renew the lease every third of it while the engine runs; set the event if it is lost."""
    stop, lost = threading.Event(), threading.Event()

    def beat() -> None:
        while not stop.wait(claimed.lease.total_seconds() / 3):
            try:
                with sessions.write() as session, session.begin():
                    fenced(session, claimed)
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


def fail(
    sessions: Sessions, claimed: Claim, error: str, *, retry: bool, stage: str = ""
) -> Literal["failed", "requeued"]:
    """Record why the run stopped: back to the queue after a transient fault, else failed at
    once, the error (and the stage it happened in) in its statistics too."""
    again = retry and claimed.attempt < run_repository.MAX_ATTEMPTS
    values: dict[str, Any] = (
        {"status": MatchRunStatus.QUEUED, "stage": "queued", "claimed_by": ""}
        if again
        else {"status": MatchRunStatus.FAILED, "stage": "failed", "finished_at": utc_now()}
    )
    with sessions.write() as session, session.begin():
        if not again:
            run = session.get(MatchRun, claimed.run_id, populate_existing=True)
            before = dict(run.stats) if run is not None else {}
            values["stats"] = before | {"error": error[:4000], "failed_stage": stage}
        fenced(session, claimed, error=error[:4000], lease_expires_at=None, **values)
        run = session.get(MatchRun, claimed.run_id, populate_existing=True)
        if run is not None:  # the fence matched it; the failure is audited with it
            event_service.record(
                session,
                actor=None,
                action="match_run.requeued" if again else "match_run.failed",
                entity=run,
                region_code=run.scope_region,
                after={"error": error[:500], "attempt": claimed.attempt},
            )
    return "requeued" if again else "failed"


def release(sessions: Sessions, claimed: Claim) -> bool:
    """Hand a run we cannot finish (shutting down) back to the queue at once, instead of
    leaving it to the lease's expiry. Fenced: if another worker took it over meanwhile nothing
    changes, and our own compute, should it still finish, finds its fence gone and writes
    nothing. The attempt stays counted, so the fence of this claim can never match again."""
    try:
        with sessions.write() as session, session.begin():
            fenced(
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
