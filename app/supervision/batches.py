"""The deadline sweep and the outbox in bounded batches of short transactions.

One sweep of a province once ran for 20 minutes in one transaction and was rolled back
(PostgreSQL), or held SQLite's only write lock for six (log-ins failed meanwhile). Here each
batch — at most ``batch`` offers expired and re-matched, or ``batch`` overdue items announced,
or ``batch`` notifications sent — commits on its own, so no transaction lasts more than a
moment, a crash loses at most one batch (the sweep is idempotent: moves are compare-and-set,
notifications carry a ``dedupe_key``), and progress is reported after each batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.assignments import rematch as rematch_service
from app.bundling import milestones
from app.common import idempotency
from app.common.clock import utc_now
from app.common.pagination import PageParams
from app.common.schemas import Page
from app.common.workdays import local_date
from app.supervision import clocks
from app.supervision import service as supervision_service
from app.supervision.clocks import Overdue
from app.supervision.senders import DEFAULT_SENDERS, Sender, batch_for, deliver_pending

logger = logging.getLogger(__name__)

BATCH = 500
# Offers expired and re-matched per round. A re-match's cost is mostly fixed (a snapshot of
# the skilled providers, the text model): 25 a round made 2,000 expiries take 80 engine
# runs. The engine runs in a read transaction, so the size does not lengthen a write.
REMATCH_BATCH = 250
Progress = Callable[[str, int], None]  # phase, items done so far
Transaction = Callable[[], AbstractContextManager[Session]]  # one short transaction per call
Lister = Callable[..., Page[Overdue]]


def begin_each(open_session: Callable[[], Session]) -> Transaction:
    """A transaction per call from a session factory (the worker's, or a test's)."""

    @contextmanager
    def transaction() -> Iterator[Session]:
        with open_session() as session, session.begin():
            yield session

    return transaction


class _Timed:
    """Counts the sweep's transactions and keeps the longest write: the figure that says no
    lock was held for long (a province's sweep once held one for 20 minutes). Reads (the
    engine's snapshot for a re-match) are counted, not timed: they hold no write lock."""

    def __init__(
        self, transaction: Transaction, out: supervision_service.SweepReport, *, writes: bool
    ) -> None:
        self.transaction, self.out, self.writes = transaction, out, writes

    @contextmanager
    def __call__(self) -> Iterator[Session]:
        started = time.perf_counter()
        with self.transaction() as session:
            yield session
        held = time.perf_counter() - started
        self.out.transactions += 1
        if self.writes:
            longest = max(self.out.longest_transaction_seconds, held)
            self.out.longest_transaction_seconds = round(longest, 3)


@dataclass(frozen=True)
class _Scopes:
    """Write transactions, and reads that need not hold the write lock (SQLite: DEFERRED)."""

    write: Transaction
    read: Transaction


def _rematched(scopes: _Scopes, request_ids: list[int]) -> int:
    """Re-match reopened requests: the engine decides in a read transaction, the offers are
    written (each checked again) in a short write transaction of their own."""
    if not request_ids:
        return 0
    with scopes.read() as session:
        planned = rematch_service.plan(session, request_ids=request_ids)
    with scopes.write() as session:
        applied = rematch_service.apply(session, planned, actor=None, planned_apart=True)
        return len(applied.made)


def _late_offers(
    scopes: _Scopes,
    now: datetime,
    batch: int,
    report: Progress,
    out: supervision_service.SweepReport,
) -> None:
    """Offers past their deadline: announced and expired a batch per transaction, then
    re-matched, in assignment order from where the last batch stopped (re-match offers are
    newer and not late, so the walk ends)."""
    after: int | None = None
    while True:
        with scopes.write() as session:
            found = clocks.offers_page(session, now, None, PageParams(batch, after), count=False)
            if not found.items:
                return
            people = supervision_service.coordinators(session)
            supervision_service.announce(session, found.items, people, now, out)
            expired = supervision_service.expire_offers(session, found.items)
            out.expired_offers += len(expired)
        out.rematched_offers += _rematched(scopes, expired)
        report("offers", out.expired_offers)
        if found.next_cursor is None:
            return
        after = found.items[-1].key


def _released(
    scopes: _Scopes,
    now: datetime,
    batch: int,
    report: Progress,
    out: supervision_service.SweepReport,
) -> None:
    """Offers of providers paused or deactivated today, withdrawn and re-matched by batch."""
    while True:
        with scopes.write() as session:
            released = supervision_service.release_offers_of_unavailable(
                session, local_date(now), limit=batch
            )
            out.released_offers += len(released)
        out.rematched_offers += _rematched(scopes, released)
        report("released", out.released_offers)
        if len(released) < batch:
            return


def _announced(
    transaction: Transaction,
    lister: Lister,
    now: datetime,
    batch: int,
    report: Progress,
    out: supervision_service.SweepReport,
) -> None:
    """One overdue list announced a page per transaction, read afresh from the last key:
    memory and transaction length stay bounded by ``batch`` whatever the backlog."""
    after: int | None = None
    done = 0
    while True:
        with transaction() as session:
            found = lister(session, now, None, PageParams(batch, after), count=False)
            people = supervision_service.coordinators(session)
            supervision_service.announce(session, found.items, people, now, out)
        done += len(found.items)
        report("overdue", done)
        if found.next_cursor is None:
            return
        after = found.items[-1].key


def _scheduled(
    transaction: Transaction,
    now: datetime,
    batch: int,
    report: Progress,
    out: supervision_service.SweepReport,
) -> None:
    """Generated steps left "to be scheduled" (their day fell in a year the holiday calendar
    did not know) dated once it does: the clocks still waiting are read first (a few dozen),
    and only those now datable are written, ``batch`` steps per transaction."""
    with transaction() as session:
        days_by_clock = milestones.datable(milestones.undated_clocks(session), now)
    after: int | None = None
    while days_by_clock:
        with transaction() as session:
            count, after = milestones.date_waiting(session, days_by_clock, after=after, limit=batch)
        out.scheduled_milestones += count
        report("milestones", out.scheduled_milestones)
        if after is None:
            return


def sweep_in(
    transaction: Transaction,
    *,
    read: Transaction | None = None,
    now: datetime | None = None,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> supervision_service.SweepReport:
    """The whole deadline sweep, as :func:`app.supervision.service.sweep` does it (and the
    dating of steps left "to be scheduled", which only this one does), but in bounded
    transactions, each opened by ``transaction()`` (``read()`` for the engine's
    snapshots, when given); the report counts them and gives the longest."""
    now = now or utc_now()
    started = time.perf_counter()
    out = supervision_service.SweepReport()
    report: Progress = progress or (lambda _phase, _done: None)
    timed = _Timed(transaction, out, writes=True)
    scopes = _Scopes(
        write=timed, read=_Timed(read, out, writes=False) if read is not None else timed
    )
    small = min(batch, REMATCH_BATCH)
    _late_offers(scopes, now, small, report, out)
    _released(scopes, now, small, report, out)
    _announced(timed, clocks.follow_ups_page, now, batch, report, out)
    _announced(timed, clocks.requests_page, now, batch, report, out)
    _scheduled(timed, now, batch, report, out)
    with timed() as session:
        idempotency.purge_expired(session, now=now)  # one set-based DELETE of keys past 24 h
    out.seconds = round(time.perf_counter() - started, 3)
    logger.info(
        "sweep: %d offers expired, %d released, %d re-matched, %d notifications, "
        "%d milestones dated, %d transactions (longest %.3f s)",
        out.expired_offers,
        out.released_offers,
        out.rematched_offers,
        out.notifications,
        out.scheduled_milestones,
        out.transactions,
        out.longest_transaction_seconds,
    )
    return out


def sweep(
    open_session: Callable[[], Session],
    *,
    open_read: Callable[[], Session] | None = None,
    now: datetime | None = None,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> supervision_service.SweepReport:
    """:func:`sweep_in` with a transaction per batch from ``open_session`` (a fresh session
    each time), and the engine's reads from ``open_read`` if given."""
    read = begin_each(open_read) if open_read is not None else None
    return sweep_in(begin_each(open_session), read=read, now=now, batch=batch, progress=progress)


def drain_outbox(
    open_session: Callable[[], Session],
    senders: Mapping[str, Sender] = DEFAULT_SENDERS,
    *,
    batch: int = 1000,
    most: int = 100_000,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Deliver pending notifications at the senders' pace, a committed batch at a time, until
    none is left (or ``most`` were tried); returns (sent, failed)."""
    sent = failed = 0
    batch = batch_for(senders, batch)  # what one claim takes
    while sent + failed < most:
        done, bad = deliver_pending(open_session, senders, limit=batch)
        sent, failed = sent + done, failed + bad
        if progress is not None:
            progress("outbox", sent + failed)
        if done + bad < batch or done == 0:  # drained, or only failing gateways left
            break
    return sent, failed
