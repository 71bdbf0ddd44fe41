"""The audit log's pages at a large size: the first and a later page of ``/events``, as its
router builds them, with the total counted up to the cap (``ZHUQI_LIST_COUNT_CAP``) against
the exact count (the peer, the same statement without the cap), in the same run.

The log grows by every audited change and is never trimmed; its total is counted on every
page. A scratch database at head gets ``--events`` synthetic events spread over provinces
(made by the database itself: ``generate_series`` on PostgreSQL, a recursive CTE on SQLite),
then analysed. Each figure is the median of ``--repeats`` calls in one warm session.

Usage::

    .venv/bin/python bench/events_count.py --database postgresql --events 3000000
    .venv/bin/python bench/events_count.py --database sqlite --events 1000000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from sqlalchemy import Select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch import count, scratch_database

from app.common.pagination import PageParams, paginate
from app.common.principal import Principal
from app.db import make_engine, make_session_factory
from app.events import repository
from app.events.schemas import EventRead
from app.migrate import upgrade
from app.models import Event, Role
from app.settings import Settings

# Six-digit codes in eight provinces; the coordinator below reads province 35 (1 in 8).
REGIONS = ("110101", "310104", "320505", "330106", "350582", "370202", "440305", "510107")
ACTIONS = ("assignment.offered", "assignment.accepted", "plan.created", "request.submitted")

PG_FILL = """
INSERT INTO events (actor_id, actor_label, action, entity_type, entity_id, region_code,
                    before, after, created_at)
SELECT 1, 'bench', (ARRAY{actions})[1 + i % 4], 'assignment', i / 3,
       (ARRAY{regions})[1 + (i / 7) % 8], NULL, '{{"status": "offered"}}'::json,
       now() - make_interval(secs => {n} - i)
FROM generate_series(1, {n}) AS i
"""

SQLITE_FILL = """
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})
INSERT INTO events (actor_id, actor_label, action, entity_type, entity_id, region_code,
                    before, after, created_at)
SELECT 1, 'bench', json_extract('{actions_json}', '$[' || (i % 4) || ']'), 'assignment',
       i / 3, json_extract('{regions_json}', '$[' || ((i / 7) % 8) || ']'), NULL,
       '{{"status": "offered"}}', datetime('now', '-' || ({n} - i) || ' seconds')
FROM s
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--events", type=count, default=count("3000k"))
    parser.add_argument("--repeats", type=int, default=7)
    return parser


def fill(session: Session, kind: str, n: int) -> None:
    if kind == "postgresql":
        pg_array = "[{}]"
        actions = pg_array.format(", ".join(f"'{a}'" for a in ACTIONS))
        regions = pg_array.format(", ".join(f"'{r}'" for r in REGIONS))
        session.execute(text(PG_FILL.format(actions=actions, regions=regions, n=n)))
    else:
        as_json = '["{}"]'
        session.execute(
            text(
                SQLITE_FILL.format(
                    actions_json=as_json.format('", "'.join(ACTIONS)),
                    regions_json=as_json.format('", "'.join(REGIONS)),
                    n=n,
                )
            )
        )


def _page(session: Session, statement: Select[Event], params: PageParams) -> object:
    """A page of ``/events`` as its router makes it."""
    return paginate(session, statement, Event.id, params, EventRead.model_validate, count=True)


def median_ms(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    cap = Settings.model_fields["list_count_cap"].default
    admin = Principal(user_id=1, email="admin@bench", role=Role.ADMIN)
    coordinator = Principal(
        user_id=2, email="c@bench", role=Role.COORDINATOR, region_prefixes=("35",)
    )
    with scratch_database(args.database, "events") as url:
        upgrade(url=url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        started = time.perf_counter()
        with factory.begin() as session:
            fill(session, args.database, args.events)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
        print(
            f"{args.database}: {args.events:,} events filled and analysed in "
            f"{time.perf_counter() - started:.0f} s; cap {cap:,}"
        )
        with factory() as session:
            last = session.scalar(text("SELECT max(id) FROM events"))
            cases = {
                "admin, all": (admin, repository.EventFilter()),
                "coordinator 35": (coordinator, repository.EventFilter()),
                "coordinator 35, one action": (
                    coordinator,
                    repository.EventFilter(action="plan.created"),
                ),
            }
            print(f"  {'first page of 50 (ms)':<30} {'exact':>9} {'capped':>9} {'ratio':>7}")
            for label, (principal, filters) in cases.items():
                statement = repository.filtered(repository.visible_to(principal), filters)
                figures = [
                    median_ms(
                        partial(_page, session, statement, PageParams(50, after, cap_)),
                        args.repeats,
                    )
                    for cap_ in (None, cap)
                    for after in (None, last // 2)
                ]
                exact, capped = figures[0], figures[2]
                print(f"  {label:<30} {exact:9.1f} {capped:9.1f} {capped / exact:7.3f}")
                print(
                    f"  {'  a page halfway':<30} {figures[1]:9.1f} {figures[3]:9.1f}"
                    f" {figures[3] / figures[1]:7.3f}"
                )
        engine.dispose()


if __name__ == "__main__":
    main()
