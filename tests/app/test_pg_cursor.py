"""The request path's psycopg cursor describes results as psycopg does, for what is read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.db import make_engine
from tests.conftest import PG_SERVER, require_postgres

psycopg = pytest.importorskip("psycopg")
from app.pg_cursor import DescribedCursor  # noqa: E402 - needs psycopg

QUERIES = [
    "SELECT 1 AS one, 'a'::text AS letter, now() AS at, NULL::jsonb AS doc, 2.5::numeric",
    "SELECT",  # no columns, but tuples: an empty description, not None
    "SELECT oid, typname FROM pg_type WHERE false",  # no rows: still described
    "CREATE TEMPORARY TABLE t (id int)",  # no tuples: None
    "INSERT INTO t VALUES (1)",
    "INSERT INTO t VALUES (2) RETURNING id, id * 2 AS twice",
    "SELECT * FROM t",
]


@pytest.fixture
def engine() -> Iterator[Engine]:
    require_postgres()
    made = make_engine(f"{PG_SERVER}/test")
    yield made
    made.dispose()


def test_the_engine_uses_it(engine: Engine) -> None:
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        assert isinstance(raw.cursor(), DescribedCursor)


def test_names_and_types_are_psycopgs(engine: Engine) -> None:
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        ours, theirs = raw.cursor(), psycopg.Cursor(raw)
        assert isinstance(ours, DescribedCursor)
        for query in QUERIES:
            ours.execute(query)
            mine = ours.description
            theirs.execute(query.replace("CREATE TEMPORARY TABLE t", "CREATE TEMPORARY TABLE u"))
            expected = theirs.description
            if expected is None:
                assert mine is None, query
                continue
            assert mine is not None, query
            assert [(c.name, c.type_code) for c in mine] == [
                (c.name, c.type_code) for c in expected
            ], query
            assert [tuple(c)[:2] for c in mine] == [(c[0], c[1]) for c in expected], query
            assert all(len(c) == 7 for c in mine)
        connection.rollback()


def test_sqlalchemy_reads_rows_through_it(engine: Engine) -> None:
    with engine.connect() as connection:
        row = connection.execute(text("SELECT 7 AS seven, 'x' AS ex")).one()
    assert row._mapping == {"seven": 7, "ex": "x"}
