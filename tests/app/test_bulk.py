"""Id sets beyond the bind-parameter limits, COPY round trips, and statistics after a load."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Table, create_engine, func, literal, select, text
from sqlalchemy.orm import Session

from app.common.bulk import insert_rows, refresh_planner_statistics
from app.common.clock import utc_now
from app.common.idsets import in_ids
from app.events import service as event_service
from app.models import Enterprise, Event, HelpRequest, WebhookDelivery, WebhookSubscription
from seed.__main__ import main as seed_main
from tests.factories import make_enterprise, make_request
from tests.live import BACKENDS, own_database


def test_an_id_set_larger_than_any_parameter_limit_is_one_parameter(db: Session) -> None:
    enterprise = make_enterprise(db)
    wanted = [make_request(db, enterprise).id for _ in range(3)]
    ids = [*range(10_000_000, 10_100_000), *wanted]  # 100,003 ids: over 65,535 and 32,766
    statement = select(HelpRequest.id).where(in_ids(HelpRequest.id, ids)).order_by(HelpRequest.id)
    assert list(db.scalars(statement)) == wanted
    nothing = select(func.count()).select_from(HelpRequest).where(in_ids(HelpRequest.id, []))
    assert db.scalar(nothing) == 0


def test_a_cached_id_set_statement_binds_each_calls_own_ids(db: Session) -> None:
    """The statement is compiled once per shape and cached: every call must still bind its
    own ids (as a plain bind and inside a subquery), on both databases."""
    enterprise = make_enterprise(db)
    ids = [make_request(db, enterprise).id for _ in range(4)]

    def found(wanted: list[int]) -> list[int]:
        inner = select(HelpRequest.id).where(in_ids(HelpRequest.id, wanted[1:]))
        statement = (
            select(HelpRequest.id)
            .where(in_ids(HelpRequest.id, wanted) & HelpRequest.id.in_(inner))
            .order_by(HelpRequest.id)
        )
        return list(db.scalars(statement))

    assert found(ids[:3]) == ids[1:3]
    assert found(ids[1:]) == ids[2:]
    assert found([ids[0], ids[3]]) == [ids[3]]
    assert found([]) == []


def test_the_planner_sees_an_id_set_as_a_constant_array(db: Session) -> None:
    """PostgreSQL receives the ids as array text and must fold it into a constant array at
    bind time, as it did a bound list: a cast it cannot fold (``$1::VARCHAR::BIGINT[]``) is
    evaluated for every row the statement reads, which made a 10k publish's request
    ``UPDATE`` take seconds. SQLite has no such cast: its JSON text is read by ``json_each``."""
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL's plan")
    ids = [3, 1, 2, 2]
    statement = select(HelpRequest.id).where(
        in_ids(HelpRequest.enterprise_id, ids) | in_ids(HelpRequest.id, ids)
    )
    compiled = statement.compile(dialect=db.get_bind().dialect)
    explained = db.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
    plan = "\n".join(explained.scalars())
    assert plan.count("'{1,2,3}'::bigint[]") == 2, plan
    assert "cstring" not in plan, plan
    assert "character varying" not in plan, plan


def test_insert_rows_round_trips_json_text_and_times(db: Session) -> None:
    table = Event.__table__
    assert isinstance(table, Table)
    now = utc_now()
    rows = [
        {
            "actor_id": None,
            "actor_label": "system",
            "action": "bulk.test",
            "entity_type": "help_requests",
            "entity_id": i,
            "region_code": "350582",
            "before": None,
            "after": {"note": f'引号 " 与反斜杠 \\ 和\t制表符 {i}', "n": [i, None]},
            "created_at": now,
        }
        for i in range(50)
    ]
    assert insert_rows(db, table, rows) == 50
    stored = db.scalars(select(Event).where(Event.action == "bulk.test").order_by(Event.entity_id))
    assert [(e.entity_id, e.after, e.created_at) for e in stored] == [
        (r["entity_id"], r["after"], now) for r in rows
    ]
    # A None in a JSON column is JSON null on COPY too, as the executemany path stores it.
    sql_null = select(func.count()).where(table.c.action == "bulk.test", table.c.before.is_(None))
    assert db.scalar(sql_null) == 0


def test_bulk_events_reach_the_webhooks_that_want_them(db: Session) -> None:
    """A publish's offers and a revert's withdrawals are written in bulk; a subscriber to
    ``assignment.offered`` hears of each, as of an event written one at a time."""
    db.add(
        WebhookSubscription(
            url="https://hooks.example.com/x", events=["assignment.offered"], secret="s"
        )
    )
    db.flush()
    changes = [
        *(
            event_service.Change("assignment.offered", "assignments", i, "350582", None, {"n": i})
            for i in range(2, 5)
        ),
        event_service.Change("request.matched", "help_requests", 9, "350582"),
    ]
    assert event_service.record_many(db, actor=None, changes=changes) == 4
    deliveries = db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [(d.event_type, d.payload["data"]["entity_id"]) for d in deliveries] == [
        ("assignment.offered", i) for i in range(2, 5)
    ]


def test_events_selected_in_sql_are_those_record_many_writes(db: Session) -> None:
    """``record_selected`` (one ``INSERT ... SELECT``) stores what ``record_many`` stores for
    the same rows, JSON text included, and its subscribers hear of each event."""
    db.add(WebhookSubscription(url="https://hooks.example.com/x", events=["x.*"], secret="s"))
    enterprise = make_enterprise(db, region_code="350582")
    ids = [make_request(db, enterprise).id for _ in range(3)]
    changes = [
        event_service.Change("y.listed", "help_requests", i, "350582", None, {"id": i, "n": 7})
        for i in ids
    ]
    assert event_service.record_many(db, actor=None, changes=changes) == 3
    rows = (
        select(
            HelpRequest.id,
            Enterprise.region_code,
            event_service.json_value(None),
            event_service.json_of_ids(db, id=HelpRequest.id, n=literal(7)),
        )
        .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
        .where(HelpRequest.id.in_(ids))
        .order_by(HelpRequest.id.desc())
    )
    assert (
        event_service.record_selected(
            db, actor=None, action="x.listed", entity_type="help_requests", rows=rows
        )
        == 3
    )
    stored = text(
        "SELECT entity_type, entity_id, region_code, actor_id, actor_label, "
        "CAST(before AS TEXT), CAST(after AS TEXT) FROM events WHERE action = :a ORDER BY id"
    )
    by_many = db.execute(stored, {"a": "y.listed"}).all()
    by_select = db.execute(stored, {"a": "x.listed"}).all()
    assert by_select == by_many[::-1]  # in the select's order
    assert by_select[0][5:] == ("null", json.dumps({"id": ids[-1], "n": 7}))
    deliveries = db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [(d.event_type, d.payload["data"]["entity_id"]) for d in deliveries] == [
        ("x.listed", i) for i in reversed(ids)
    ]


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own: the load commits, so it must not share the session's."""
    with own_database(request.param, tmp_path, migrate=False) as url:
        yield url


def test_a_seed_leaves_the_planner_statistics_fresh(fresh_url: str) -> None:
    assert seed_main(["--enterprises", "30", "--providers", "10", "--database-url", fresh_url]) == 0
    engine = create_engine(fresh_url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                analysed = connection.scalar(  # reltuples is -1 until a table is analysed
                    text(
                        "SELECT count(*) FROM pg_class WHERE relname IN "
                        "('enterprises', 'help_requests', 'providers') AND reltuples > 0"
                    )
                )
                assert analysed == 3
            else:
                tables = set(connection.scalars(text("SELECT tbl FROM sqlite_stat1")))
                assert {"enterprises", "help_requests", "providers"} <= tables
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_refresh_never_waits_on_the_shared_catalogs(backend: str, tmp_path: Path) -> None:
    """Another database of the same server analysing a shared catalog (``pg_authid``) inside an
    open transaction holds its lock until it ends: a bare ``ANALYZE`` here would wait for it
    (the lock timeout makes that wait an error instead of a hang)."""
    with own_database(backend, tmp_path) as ours, own_database(backend, tmp_path) as theirs:
        other, engine = create_engine(theirs), create_engine(ours)
        try:
            with other.begin() as holding:
                holding.execute(text("ANALYZE pg_catalog.pg_authid"))
                with engine.begin() as connection:
                    connection.execute(text("SET LOCAL lock_timeout = '2s'"))
                    refresh_planner_statistics(connection)
                    analysed = connection.scalar(
                        text(
                            "SELECT count(*) FROM pg_class WHERE relname = 'enterprises' AND reltuples >= 0"
                        )
                    )
            assert analysed == 1
        finally:
            other.dispose()
            engine.dispose()
