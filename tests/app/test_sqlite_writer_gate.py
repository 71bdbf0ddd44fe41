"""SQLite's writers queue on an in-process gate (``app.db.writer_gate``) before ``BEGIN
IMMEDIATE``, and every way a write transaction can end lets the next writer in.

SQLite only: the gate stands in front of SQLite's single write lock, whose busy handler
sleeps and retries; PostgreSQL locks rows and has no such gate.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from app.db import make_engine, make_session_factory, writer_gate

WRITERS = 6
WRITES_EACH = 15


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    path = tmp_path / "gate.db"
    engine = make_engine(f"sqlite:///{path}", statement_timeout_ms=200)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    yield str(path), engine
    engine.dispose()


def test_a_write_transaction_holds_the_gate_until_it_commits(
    database: tuple[str, Engine],
) -> None:
    path, engine = database
    gate = writer_gate(path)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (1)"))
        assert gate.locked()
    assert not gate.locked()


def test_every_way_a_write_ends_opens_the_gate(database: tuple[str, Engine]) -> None:
    path, engine = database
    gate = writer_gate(path)

    def fails_half_way() -> None:
        with engine.begin() as connection:  # rolled back by the context manager
            connection.execute(text("INSERT INTO t VALUES (1)"))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fails_half_way()
    assert not gate.locked()

    connection = engine.connect()
    connection.execute(text("INSERT INTO t VALUES (2)"))
    assert gate.locked()
    connection.close()  # never committed: closing rolls back
    assert not gate.locked()

    connection = engine.connect()
    connection.execute(text("INSERT INTO t VALUES (3)"))
    connection.invalidate()  # a connection lost mid-transaction
    assert not gate.locked()
    connection.rollback()
    connection.close()

    session = make_session_factory(engine)()
    session.execute(text("INSERT INTO t VALUES (4)"))
    session.rollback()
    assert not gate.locked()
    session.execute(text("INSERT INTO t VALUES (5)"))
    session.commit()
    session.close()
    assert not gate.locked()
    with engine.connect() as reader:
        assert reader.execute(text("SELECT x FROM t ORDER BY x")).scalars().all() == [5]


def test_a_writer_that_cannot_pass_in_time_gets_the_lock_error(
    database: tuple[str, Engine],
) -> None:
    """What a request maps to 503 with ``Retry-After``, as a lock wait on SQLite always was."""
    path, engine = database
    gate = writer_gate(path)
    assert gate.acquire(timeout=5)  # another writer of this process, holding on
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            engine.begin().__enter__()
        read = make_session_factory(engine, read_only=True)
        with read() as session:  # reads begin DEFERRED and never queue at the gate
            assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    finally:
        gate.release()
    with engine.begin() as connection:  # and the failed writer left nothing held
        connection.execute(text("INSERT INTO t VALUES (1)"))
    assert not gate.locked()


def test_engines_of_one_file_share_the_gate_and_every_write_lands(
    database: tuple[str, Engine],
) -> None:
    """The API's engine and the embedded worker's: two engines, one file, one queue."""
    path, engine = database
    other = make_engine(f"sqlite:///{path}", statement_timeout_ms=30_000)
    patient = make_engine(f"sqlite:///{path}", statement_timeout_ms=30_000)
    failures: list[BaseException] = []

    def write(which: Engine, base: int) -> None:
        try:
            for i in range(WRITES_EACH):
                with which.begin() as connection:
                    connection.execute(text("INSERT INTO t VALUES (:x)"), {"x": base + i})
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    threads = [
        threading.Thread(target=write, args=(other if n % 2 else patient, 1000 * n))
        for n in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        with engine.connect() as reader:
            count = reader.execute(text("SELECT count(*) FROM t")).scalar_one()
        assert count == WRITERS * WRITES_EACH
        assert not writer_gate(path).locked()
    finally:
        other.dispose()
        patient.dispose()
