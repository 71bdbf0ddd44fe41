"""``/stats`` cold at province scale (issue 7.2): how long one uncached computation takes.

Seeds a scratch database (or reuses ``--database-url``, already seeded), adds a synthetic
offer history once (about 60 % of requests offered, one in three of those twice; accepted,
active, completed with ratings and follow-ups, declined, expired, withdrawn; some requests
resolved or unresolvable), then times ``app.stats.service.summarise`` with the cache off for
an admin (everything) and a coordinator of the largest province, with and without
``group_by``. Grouped, ``summarise`` answers one page of groups (``--limit``, the API's
default 50): the first page and the page after it are timed, and, grouped by provider, the
export's stream of every group (``every_group``, consumed to the end; ``--no-export`` leaves
it out). Each figure is the best of ``--repeat`` runs, every one cold (no cache), in wall
seconds and in CPU seconds (this process plus, on PostgreSQL, the server backend that ran the
statements, read from ``/proc``: the server must be local; parallel workers are turned off in
the timed sessions so that one backend does all the work), since on a loaded machine the wall
time mostly measures the queue for a core. Then the supervision board (``/supervision``:
the first page of each list with its total, and the ageing) is timed the same way, cold.

Usage::

    .venv/bin/python bench/stats.py --database postgresql --enterprises 100k --providers 50k
    .venv/bin/python bench/stats.py --database sqlite --enterprises 100k --providers 50k
    .venv/bin/python bench/stats.py --database-url postgresql+psycopg://postgres@127.0.0.1/db

With ``--keep FILE`` (SQLite) the seeded database is copied there, so a second run with
``--database-url sqlite:///FILE`` skips the seed. The history is added only to a database
that has no assignments yet.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch import count, scratch_database

from app.common.bulk import refresh_planner_statistics
from app.common.pagination import PageParams
from app.common.principal import Principal
from app.db import make_engine, make_session_factory
from app.models import (
    Assignment,
    AssignmentStatus,
    Enterprise,
    Feedback,
    FollowUp,
    HelpRequest,
    Plan,
    Provider,
    RequestStatus,
    Role,
)
from app.models.base import table_of
from app.stats import service
from app.stats.repository import StatsFilter
from app.stats.schemas import GroupBy
from app.supervision import pages

PYTHON = sys.executable
STATUSES = (
    AssignmentStatus.OFFERED,
    AssignmentStatus.ACCEPTED,
    AssignmentStatus.ACTIVE,
    AssignmentStatus.COMPLETED,
    AssignmentStatus.COMPLETED,
    AssignmentStatus.DECLINED,
    AssignmentStatus.EXPIRED,
    AssignmentStatus.WITHDRAWN,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="sqlite")
    parser.add_argument("--database-url", help="an already seeded database to reuse")
    parser.add_argument("--enterprises", type=count, default=count("10k"))
    parser.add_argument("--providers", type=count, default=count("10k"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="SQLite: copy the seeded database to this file")
    parser.add_argument("--limit", type=int, default=50, help="groups per page")
    parser.add_argument("--no-export", action="store_true", help="skip the every-group stream")
    return parser


@contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    if args.database_url:
        yield args.database_url
        return
    with scratch_database(args.database, "stats") as url:
        started = time.perf_counter()
        subprocess.run(
            [
                *(PYTHON, "-m", "seed", "--database-url", url),
                *("--enterprises", str(args.enterprises), "--providers", str(args.providers)),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"  seed {time.perf_counter() - started:.1f} s")
        yield url


def add_history(session: Session) -> int:
    """A deterministic offer history over the seeded requests, written set-wise."""
    if session.scalar(select(func.count()).select_from(Assignment)):
        return 0
    providers = list(session.scalars(select(Provider.id).order_by(Provider.id)))
    requests = session.execute(
        select(HelpRequest.id, HelpRequest.enterprise_id, HelpRequest.created_at).order_by(
            HelpRequest.id
        )
    ).all()
    offers: list[dict[str, Any]] = []
    for n, (request_id, _enterprise_id, created_at) in enumerate(requests):
        if n % 10 >= 6:
            continue
        for k in range(1 + (n % 3 == 0)):
            status = STATUSES[(n + 3 * k) % len(STATUSES)]
            offered_at = created_at + timedelta(hours=1 + (n * 7 + k) % 97)
            answered = status not in (AssignmentStatus.OFFERED, AssignmentStatus.WITHDRAWN)
            offers.append(
                {
                    "request_id": request_id,
                    "provider_id": providers[(n * 7919 + k) % len(providers)],
                    "origin": "match_run",
                    "status": status,
                    "offered_at": offered_at,
                    "responded_at": offered_at + timedelta(hours=2) if answered else None,
                    "completed_at": offered_at + timedelta(days=3)
                    if status is AssignmentStatus.COMPLETED
                    else None,
                }
            )
    session.execute(insert(Assignment), offers)
    completed: list[Any] = list(
        session.execute(
            select(Assignment.id, Assignment.request_id, Assignment.completed_at).where(
                Assignment.status == AssignmentStatus.COMPLETED
            )
        )
    )
    session.execute(
        insert(Feedback),
        [
            {
                "assignment_id": a,
                "rating": 1 + a % 5,
                "satisfied": a % 5 >= 2,
                "created_at": done + timedelta(hours=5),
            }
            for a, _r, done in completed
            if a % 4
        ],
    )
    resolved = [(r, done) for a, r, done in completed if a % 5 >= 2]
    table = table_of(HelpRequest)
    session.connection().execute(
        table.update()
        .where(table.c.id == bindparam("rid"))
        .values(status=RequestStatus.RESOLVED.value, resolved_at=bindparam("at")),
        [{"rid": r, "at": done + timedelta(days=1)} for r, done in resolved],
    )
    unresolvable = [r for n, (r, _e, _c) in enumerate(requests) if n % 23 == 0]
    session.execute(
        update(HelpRequest)
        .where(HelpRequest.id.in_(unresolvable), HelpRequest.status != RequestStatus.RESOLVED)
        .values(status=RequestStatus.UNRESOLVABLE),
        execution_options={"synchronize_session": False},
    )
    _add_follow_ups(session, completed)
    return len(offers)


def _add_follow_ups(session: Session, completed: list[Any]) -> None:
    """One visit per completed offer, on a plan of the request's enterprise."""
    owners = dict(
        session.execute(
            select(HelpRequest.id, HelpRequest.enterprise_id).where(
                HelpRequest.id.in_({r for _a, r, _d in completed})
            )
        ).all()
    )
    plans = dict(session.execute(select(Plan.enterprise_id, Plan.id)).all())
    missing = sorted(set(owners.values()) - set(plans))
    if missing:
        session.execute(insert(Plan), [{"enterprise_id": e} for e in missing])
        plans = dict(session.execute(select(Plan.enterprise_id, Plan.id)).all())
    session.execute(
        insert(FollowUp),
        [
            {
                "plan_id": plans[owners[r]],
                "assignment_id": a,
                "kind": "visit",
                "occurred_at": done,
                "created_at": done,
            }
            for a, r, done in completed
        ],
    )


def largest_province(session: Session) -> str:
    code = func.substr(Enterprise.region_code, 1, 2)
    return str(
        session.execute(
            select(code).group_by(code).order_by(func.count().desc()).limit(1)
        ).scalar_one()
    )


def _backend_cpu(session: Session) -> float:
    """CPU seconds the PostgreSQL backend serving ``session`` has used so far (0 on SQLite,
    whose work is this process's own)."""
    if session.get_bind().dialect.name != "postgresql":
        return 0.0
    session.execute(text("SET max_parallel_workers_per_gather = 0"))
    pid = session.execute(select(func.pg_backend_pid())).scalar_one()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(compute: Callable[[Session], object], factory: Any, repeat: int) -> tuple[float, float]:
    """Best wall and best CPU seconds of ``repeat`` cold runs."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        with factory() as session:
            server = _backend_cpu(session)
            started, cpu = time.perf_counter(), time.process_time()
            compute(session)
            best = min(best, time.perf_counter() - started)
            cpu = time.process_time() - cpu + _backend_cpu(session) - server
            best_cpu = min(best_cpu, cpu)
    return best, best_cpu


def time_grouping(
    factory: Any, principal: Principal, group_by: GroupBy | None, args: argparse.Namespace
) -> list[tuple[str, tuple[float, float]]]:
    """The first page, the page after it and (by provider) the stream of every group."""
    first = service.GroupPageParams(limit=args.limit)

    def page(cursor: str | None) -> Callable[[Session], object]:
        params = service.GroupPageParams(limit=args.limit, cursor=cursor)
        return lambda session: service.summarise(
            session, principal=principal, filters=StatsFilter(), group_by=group_by, page=params
        )

    with factory() as session:
        head = service.summarise(
            session, principal=principal, filters=StatsFilter(), group_by=group_by, page=first
        )
    label = "first page" if group_by else "total"
    if group_by:
        label += f" of {head.total_groups} groups"
    figures = [(label, timed(page(None), factory, args.repeat))]
    if head.next_cursor:
        figures.append(("next page", timed(page(head.next_cursor), factory, args.repeat)))
    if group_by is GroupBy.PROVIDER and not args.no_export:

        def stream(session: Session) -> object:
            _head, groups = service.every_group(
                session, principal=principal, filters=StatsFilter(), group_by=group_by
            )
            return sum(1 for _ in groups)

        figures.append(("every group (export stream)", timed(stream, factory, args.repeat)))
    return figures


def _board(principal: Principal, session: Session) -> object:
    return pages.board(session, principal=principal, region=None, page=PageParams(50, None))


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with database(args) as url:
        engine = make_engine(url)
        factory = make_session_factory(engine)
        with factory() as session:
            started = time.perf_counter()
            added = add_history(session)
            session.commit()
            if added:
                print(f"  history: {added} offers in {time.perf_counter() - started:.1f} s")
            province = largest_province(session)
            sizes = {
                "enterprises": session.scalar(select(func.count()).select_from(Enterprise)),
                "providers": session.scalar(select(func.count()).select_from(Provider)),
                "requests": session.scalar(select(func.count()).select_from(HelpRequest)),
                "offers": session.scalar(select(func.count()).select_from(Assignment)),
            }
        # Committed (engine.connect() without a commit rolled the ANALYZE's statistics back).
        refresh_planner_statistics(engine)
        print(
            f"/stats cold, {engine.dialect.name}: "
            + ", ".join(f"{v} {k}" for k, v in sizes.items())
        )
        admin = Principal(user_id=0, email="admin@bench", role=Role.ADMIN)
        coordinator = Principal(
            user_id=0, email="c@bench", role=Role.COORDINATOR, region_prefixes=(province,)
        )
        print(f"  {'call':<72} {'wall':>9} {'cpu':>9}")
        for who, principal in (("admin", admin), (f"coordinator {province}", coordinator)):
            for group_by in (None, *GroupBy):
                for what, (wall, cpu) in time_grouping(factory, principal, group_by, args):
                    label = f"{who}, group_by={group_by.value if group_by else '-'}, {what}"
                    print(f"  {label:<72} {wall:7.3f} s {cpu:7.3f} s")
        for who, principal in (("admin", admin), (f"coordinator {province}", coordinator)):
            wall, cpu = timed(partial(_board, principal), factory, args.repeat)
            label = f"{who}, /supervision board (first pages, totals, ageing)"
            print(f"  {label:<72} {wall:7.3f} s {cpu:7.3f} s")
        engine.dispose()
        if args.keep and url.startswith("sqlite:///"):
            shutil.copy(url.removeprefix("sqlite:///"), args.keep)


if __name__ == "__main__":
    main()
