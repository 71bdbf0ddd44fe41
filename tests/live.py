"""Real servers and databases of their own, for tests that need real sockets, separate
connections and committed data (races, overload, lock order, the browser, shutdown).

One place for them: each of these tests used to carry its own free-port probe, uvicorn thread
and fresh-database fixture.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import create_engine, text

from app.migrate import upgrade
from app.settings import Settings
from tests.conftest import TEST_SECRET, fresh_postgres_database, require_postgres

BACKENDS = ["sqlite", "postgresql"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def own_database(backend: str, directory: Path, *, migrate: bool = True) -> Iterator[str]:
    """A database of its own on ``backend`` (a SQLite file in ``directory``, or a fresh
    PostgreSQL database dropped afterwards), migrated to head unless ``migrate`` is False.
    These tests commit, so they must not share the suite's rolled-back database."""
    drop: Callable[[], None] = lambda: None  # noqa: E731
    if backend == "sqlite":
        url = f"sqlite:///{directory / 'own.db'}"
    else:
        require_postgres()
        url, drop = fresh_postgres_database()
    try:
        if migrate:
            upgrade(url=url)
        yield url
    finally:
        drop()


def end_sessions(url: str, condition: str = "pid <> pg_backend_pid()", **params: Any) -> int:
    """``pg_terminate_backend`` on the sessions of ``url``'s PostgreSQL database that meet
    ``condition`` (by default every one but the caller's), as a restart or an administrator
    would; waits (server side) until each has ended. How many were ended."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            ended = connection.execute(
                text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) "
                    f"FROM pg_stat_activity WHERE datname = current_database() AND {condition}"
                ),
                params,
            ).scalar_one()
    finally:
        admin.dispose()
    return int(ended)


def settings_for(url: str, *, embedded_worker: bool = False, **overrides: Any) -> Settings:
    """Test settings on ``url`` (validated like any other); no embedded worker unless the
    test wants runs processed, no text warm-up unless asked (its reads are background work
    a test would see among its own statements)."""
    return Settings(
        environment="test",
        secret_key=TEST_SECRET,
        database_url=url,
        embedded_worker=embedded_worker,
        **({"text_warmup_providers": 0} | overrides),
    )


@contextmanager
def serve(app: FastAPI, *, startup_seconds: float = 30) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; yield its base URL; stop it afterwards."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_seconds
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
