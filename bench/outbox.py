"""The outbox drains at the senders' pace (issue 7.3: 10,000 log-sender notices well under a
minute).

Builds a scratch database by the migrations, writes ``--notifications`` pending notices in
one set-based INSERT, then drains them with the worker's own loop
(:func:`app.supervision.batches.drain_outbox`, committed batches) and the log sender, and
prints the time, the rate and the longest batch. A bare peer in the same run — one UPDATE
marking every row sent — gives the database's own floor for the same rows.

Usage::

    .venv/bin/python bench/outbox.py --database sqlite --notifications 10000
    .venv/bin/python bench/outbox.py --database postgresql --notifications 10000
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import time
from pathlib import Path

from sqlalchemy import insert, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch import scratch_database

from app.common.clock import utc_now
from app.db import make_engine, make_session_factory
from app.migrate import upgrade
from app.models import Notification, NotificationStatus
from app.supervision.batches import drain_outbox
from app.supervision.senders import LogSender


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="sqlite")
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000, help="notices per transaction")
    return parser


def _fill(url: str, count: int, prefix: str) -> None:
    engine = make_engine(url)
    now = utc_now()
    rows = [
        {
            "channel": "log",
            "kind": "overdue.unrouted",
            "subject": f"诉求 #{n} 已超期",
            "body": "请尽快处理",
            "payload": {"request_id": n, "level": 1},
            "region_code": "350582",
            "dedupe_key": f"{prefix}:{n}",
            "created_at": now,
        }
        for n in range(count)
    ]
    with make_session_factory(engine)() as session, session.begin():
        for start in range(0, len(rows), 5000):
            session.execute(insert(Notification), rows[start : start + 5000])
    engine.dispose()


def _bare(url: str) -> float:
    """The floor: every pending row marked sent by one statement."""
    engine = make_engine(url)
    started = time.perf_counter()
    with make_session_factory(engine)() as session, session.begin():
        session.execute(
            update(Notification)
            .where(Notification.status == NotificationStatus.PENDING)
            .values(status=NotificationStatus.SENT, sent_at=utc_now(), attempts=1)
        )
    engine.dispose()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.getLogger("app.notifications").setLevel(logging.WARNING)  # the log sender's lines
    logging.getLogger("app.supervision").setLevel(logging.WARNING)
    with scratch_database(args.database, "outbox") as url:
        upgrade(url=url)
        _fill(url, args.notifications, "drain")
        engine = make_engine(url)
        marks = [time.perf_counter()]
        sent, failed = drain_outbox(
            make_session_factory(engine),
            {"log": LogSender()},
            batch=args.batch,
            progress=lambda _phase, _done: marks.append(time.perf_counter()),
        )
        seconds = marks[-1] - marks[0]
        engine.dispose()
        longest = max((b - a for a, b in itertools.pairwise(marks)), default=0.0)
        _fill(url, args.notifications, "bare")  # as many rows again for the peer
        bare = _bare(url)
    rate = sent / max(seconds, 1e-9)
    print(f"outbox drain: {args.database}, {args.notifications} notices, batch {args.batch}")
    print(f"  sent {sent}, failed {failed} in {seconds:.2f} s ({rate:,.0f}/s)")
    print(f"  longest batch (one transaction) {longest:.2f} s")
    print(f"  bare UPDATE of the same rows {bare:.2f} s (ratio {seconds / max(bare, 1e-9):.1f})")


if __name__ == "__main__":
    main()
