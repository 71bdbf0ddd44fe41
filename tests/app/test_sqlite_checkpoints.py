"""A service process checkpoints SQLite's write-ahead log from a thread of its own, not inside
the commit that grows the log past 1,000 pages (``app.sqlite_checkpoints``).

The log's pages reach the database file only through a checkpoint, so the file's size tells
whether one ran: a transaction writing ~8 MB leaves the file as it was until a checkpoint
copies the pages back. PostgreSQL has no such log to manage: the service starts no
checkpointer there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from app.db import make_engine
from app.main import create_app
from app.sqlite_checkpoints import Checkpointer, start_checkpointer
from tests.live import BACKENDS, own_database, settings_for

ROWS = 2000  # of 4 KB each: ~2,000 pages, twice SQLite's automatic threshold
WAIT = 30.0  # seconds a background checkpoint may take at most before the test fails


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Path, Engine]]:
    path = tmp_path / "wal.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x BLOB)"))
    yield path, engine
    engine.dispose()


def _write_pages(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) "
                "INSERT INTO t SELECT randomblob(4000) FROM s"
            ),
            {"n": ROWS},
        )


def _autocheckpoint(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def test_by_default_the_commit_itself_checkpoints(database: tuple[Path, Engine]) -> None:
    """The behaviour the checkpointer replaces (and the test's own yardstick)."""
    path, engine = database
    before = path.stat().st_size
    _write_pages(engine)
    assert _autocheckpoint(engine) == 1000
    assert path.stat().st_size > before + ROWS * 4000


def test_a_watched_engines_commit_leaves_the_pages_to_the_checkpointer(
    database: tuple[Path, Engine],
) -> None:
    path, engine = database
    engine.dispose()  # the watch applies to connections made after it
    checkpointer = Checkpointer(str(path), interval=60)
    checkpointer.watch(engine)
    try:
        before = path.stat().st_size
        _write_pages(engine)
        assert _autocheckpoint(engine) == 0
        assert path.stat().st_size == before
        busy, frames, copied = checkpointer.checkpoint()
        assert (busy, copied) == (0, frames)
        assert frames > ROWS
        assert path.stat().st_size > before + ROWS * 4000
    finally:
        checkpointer.stop()


def test_the_thread_checkpoints_soon_after_a_commit(database: tuple[Path, Engine]) -> None:
    path, engine = database
    engine.dispose()
    checkpointer = start_checkpointer(engine, interval=0.01)
    assert checkpointer is not None
    try:
        before, done = path.stat().st_size, checkpointer.completed
        _write_pages(engine)
        assert checkpointer.wait_for(done + 1, WAIT)
        assert path.stat().st_size > before + ROWS * 4000
        # Readers and further writers carry on beside it.
        _write_pages(engine)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM t")).scalar_one() == 2 * ROWS
    finally:
        checkpointer.stop()
    assert not checkpointer._thread.is_alive()


def test_stopping_checkpoints_what_is_committed(database: tuple[Path, Engine]) -> None:
    path, engine = database
    engine.dispose()
    checkpointer = Checkpointer(str(path), interval=60)  # never started: only the last one
    checkpointer.watch(engine)
    before = path.stat().st_size
    _write_pages(engine)
    checkpointer.stop()
    assert path.stat().st_size > before + ROWS * 4000


def test_nothing_to_do_without_a_sqlite_file(tmp_path: Path) -> None:
    memory = make_engine("sqlite://")
    assert start_checkpointer(memory, interval=1) is None
    on_file = make_engine(f"sqlite:///{tmp_path / 'off.db'}")
    assert start_checkpointer(on_file, interval=0) is None  # the setting's "off"
    memory.dispose()
    on_file.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_service_checkpoints_in_the_background_on_sqlite_only(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with own_database(backend, tmp_path_factory.mktemp("ckpt")) as url:
        app = create_app(settings_for(url, embedded_worker=True))
        with TestClient(app) as client:
            assert client.get("/readyz").status_code == 200
            checkpointer = app.state.sqlite_checkpointer
            if backend == "postgresql":
                assert checkpointer is None
                return
            assert isinstance(checkpointer, Checkpointer)
            # The API's engine and the embedded worker's both leave checkpoints to it.
            assert _autocheckpoint(app.state.engine) == 0
            assert _autocheckpoint(app.state.match_worker.sessions.write.kw["bind"]) == 0
        assert not checkpointer._thread.is_alive()
