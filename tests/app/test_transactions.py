"""What a session of the request path's factories is, on the database: a write is one
transaction, a read neither waits for a writer nor sees it before its commit, a statement
read runs statement by statement, and an isolation level asked for still holds (app/db.py:
``make_session_factory``, ``reader_of``, ``_begin_explicitly``, ``_install_sqlite_recipe``).

Transactions are begun by each engine's dialect (PostgreSQL's pooled connections stay in
autocommit), not by the driver or by connection events; these tests hold them to what they
were before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, make_session_factory, reader_of, session_scope
from tests.live import end_sessions, own_database

BACKENDS = ["sqlite", "postgresql"]


@contextmanager
def engine_of(backend: str, directory: Path) -> Iterator[Engine]:
    """``make_engine`` on a database of its own holding one table: these tests commit."""
    with own_database(backend, directory, migrate=False) as url:
        engine = make_engine(url, statement_timeout_ms=2000)  # a lock waited on fails fast
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with engine_of(request.param, tmp_path) as engine:
        yield engine


@pytest.fixture
def pg_engine(tmp_path: Path) -> Iterator[Engine]:
    with engine_of("postgresql", tmp_path) as engine:
        yield engine


def factories(engine: Engine) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    """The request path's two: writes, and statement reads (a GET's)."""
    return (
        make_session_factory(engine),
        make_session_factory(engine, read_only=True, statement_reads=True),
    )


def count(factory: sessionmaker[Session]) -> int:
    with session_scope(factory) as session:
        return int(session.scalar(text("SELECT count(*) FROM notes")) or 0)


class TestWrites:
    def test_a_write_is_seen_by_others_at_its_commit_and_not_before(self, engine: Engine) -> None:
        write, read = factories(engine)
        with session_scope(write) as session:
            session.execute(text("INSERT INTO notes (id, body) VALUES (1, 'a')"))
            session.flush()
            # a reader neither waits for the writer (SQLite: DEFERRED, under WAL) nor sees it
            assert count(read) == 0
        assert count(read) == 1

    def test_a_write_that_fails_leaves_nothing(self, engine: Engine) -> None:
        write, read = factories(engine)

        def change_of_mind() -> None:
            with session_scope(write) as session:
                session.execute(text("INSERT INTO notes (id, body) VALUES (1, 'a')"))
                session.execute(text("INSERT INTO notes (id, body) VALUES (2, 'b')"))
                raise RuntimeError("the use case changed its mind")

        with pytest.raises(RuntimeError):
            change_of_mind()
        assert count(read) == 0

    def test_a_savepoint_rolls_back_alone(self, engine: Engine) -> None:
        write, read = factories(engine)

        def inner_part(session: Session) -> None:
            with session.begin_nested():
                session.execute(text("INSERT INTO notes (id, body) VALUES (2, 'undone')"))
                raise RuntimeError("undo the inner part")

        with session_scope(write) as session:
            session.execute(text("INSERT INTO notes (id, body) VALUES (1, 'kept')"))
            with pytest.raises(RuntimeError):
                inner_part(session)
        assert count(read) == 1


def test_reads_share_the_engine_s_pool(engine: Engine) -> None:
    """The readers' engine opens no connection of its own."""
    reader = reader_of(engine)
    assert reader is not engine
    assert reader.pool is engine.pool


class TestPostgreSQL:
    def test_a_write_transaction_is_one_transaction(self, pg_engine: Engine) -> None:
        write, _ = factories(pg_engine)
        with session_scope(write) as session:
            first = session.scalar(text("SELECT txid_current()"))
            second = session.scalar(text("SELECT txid_current()"))
        assert first == second

    def test_a_statement_read_runs_each_statement_on_its_own(self, pg_engine: Engine) -> None:
        _, read = factories(pg_engine)
        with session_scope(read) as session:
            first = session.scalar(text("SELECT txid_current()"))
            second = session.scalar(text("SELECT txid_current()"))
            driver: Any = session.connection().connection.driver_connection
            status = driver.info.transaction_status
        assert first != second
        assert status.name == "IDLE"  # nothing is left open between the statements

    def test_a_level_asked_for_still_holds(self, pg_engine: Engine) -> None:
        write, _ = factories(pg_engine)
        with session_scope(write) as session:
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            level = session.scalar(text("SHOW transaction_isolation"))
            first = session.scalar(text("SELECT txid_current()"))
            second = session.scalar(text("SELECT txid_current()"))
        assert (level, first) == ("repeatable read", second)
        # and the connection went back to the pool as it came: the next read is on its own
        self.test_a_statement_read_runs_each_statement_on_its_own(pg_engine)

    def test_autocommit_asked_for_opens_no_transaction(self, pg_engine: Engine) -> None:
        """VACUUM cannot run inside a transaction block: a BEGIN sent here would fail it."""
        with pg_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM notes")
        self.test_a_write_transaction_is_one_transaction(pg_engine)

    def test_a_lost_connection_fails_its_begin_and_is_replaced(self, pg_engine: Engine) -> None:
        """A server session ended while its connection was checked out: the BEGIN fails as
        a disconnect, the pool discards the connection, and the next transaction works."""
        write, read = factories(pg_engine)
        url = pg_engine.url.render_as_string(hide_password=False)
        with pg_engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
            connection.commit()
            end_sessions(url)
            with pytest.raises(OperationalError) as failed:
                connection.exec_driver_sql("SELECT 1")
        assert failed.value.connection_invalidated
        with session_scope(write) as session:
            session.execute(text("INSERT INTO notes (id, body) VALUES (1, 'after')"))
        assert count(read) == 1
