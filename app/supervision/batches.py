"""The deadline sweep and the outbox in bounded batches of short transactions.

One sweep of a province once ran for 20 minutes in one transaction and was rolled back
(PostgreSQL), or held SQLite's only write lock for six (log-ins failed meanwhile). Here each
batch — at most ``batch`` offers expired and re-matched, or ``batch`` overdue items announced,
or ``batch`` notifications sent — commits on its own, so no transaction lasts more than a
moment, a crash loses at most one batch (the sweep is idempotent: moves are compare-and-set,
notifications carry a ``dedupe_key``), and progress is reported after each batch.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from app.common import idempotency
from app.common.clock import utc_now
from app.supervision import clocks
from app.supervision import service as supervision_service
from app.supervision.senders import DEFAULT_SENDERS, Sender, batch_for, deliver_pending

logger = logging.getLogger(__name__)

BATCH = 500
REMATCH_BATCH = 25  # offers expired and re-matched per transaction: each re-match runs the engine
Progress = Callable[[str, int], None]  # phase, items done so far
T = TypeVar("T")


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _late_offers(
    open_session: Callable[[], Session],
    now: datetime,
    batch: int,
    report: Progress,
    out: supervision_service.SweepReport,
) -> None:
    """Offers past their deadline: announced, expired and re-matched, a batch at a time. Each
    batch reads the oldest still-offered ones afresh, so expired ones never come back; the
    number of rounds is bounded by what was late when the sweep began."""
    with open_session() as session, session.begin():
        rounds = len(list(clocks.overdue_offers(session, now))) // batch + 1
    for _ in range(rounds):
        with open_session() as session, session.begin():
            late = list(itertools.islice(clocks.overdue_offers(session, now), batch))
            if not late:
                return
            people = supervision_service.coordinators(session)
            supervision_service.announce(session, late, people, now, out)
            expired = supervision_service.expire_offers(session, late)
            out.expired_offers += len(expired)
            out.rematched_offers += supervision_service.rematch_after(session, expired, None)
        report("offers", out.expired_offers)


def _released(
    open_session: Callable[[], Session],
    now: datetime,
    batch: int,
    report: Progress,
    out: supervision_service.SweepReport,
) -> None:
    """Offers of providers paused or deactivated today, withdrawn and re-matched by batch."""
    while True:
        with open_session() as session, session.begin():
            released = supervision_service.release_offers_of_unavailable(
                session, now.date(), limit=batch
            )
            out.released_offers += len(released)
            out.rematched_offers += supervision_service.rematch_after(session, released, None)
        report("released", out.released_offers)
        if len(released) < batch:
            return


def _overdue_work(
    open_session: Callable[[], Session],
    now: datetime,
    batch: int,
    report: Progress,
    out: supervision_service.SweepReport,
) -> None:
    """Overdue follow-ups and requests: read once, announced a batch per transaction."""
    with open_session() as session, session.begin():
        items = [
            *clocks.overdue_first_follow_ups(session, now),
            *clocks.overdue_requests(session, now),
        ]
    done = 0
    for chunk in _chunks(items, batch):
        with open_session() as session, session.begin():
            people = supervision_service.coordinators(session)
            supervision_service.announce(session, chunk, people, now, out)
        done += len(chunk)
        report("overdue", done)


def sweep(
    open_session: Callable[[], Session],
    *,
    now: datetime | None = None,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> supervision_service.SweepReport:
    """The whole deadline sweep, as :func:`app.supervision.service.sweep` does it, but in
    bounded transactions. ``open_session`` gives a fresh session per batch."""
    now = now or utc_now()
    out = supervision_service.SweepReport()
    report: Progress = progress or (lambda _phase, _done: None)
    small = min(batch, REMATCH_BATCH)
    _late_offers(open_session, now, small, report, out)
    _released(open_session, now, small, report, out)
    _overdue_work(open_session, now, batch, report, out)
    with open_session() as session, session.begin():
        idempotency.purge_expired(session, now=now)  # one set-based DELETE of keys past 24 h
    logger.info(
        "sweep: %d offers expired, %d released, %d re-matched, %d notifications",
        out.expired_offers,
        out.released_offers,
        out.rematched_offers,
        out.notifications,
    )
    return out


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
