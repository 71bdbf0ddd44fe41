"""Throw-away databases for the benchmarks: an SQLite file in a temporary folder, or a fresh
PostgreSQL database on the test server, dropped afterwards even when the bench fails; and
kept templates (a seeded database made once) with throw-away copies of them."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

PG_SERVER = os.environ.get("ZHUQI_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")


@contextmanager
def scratch_database(kind: str, label: str = "bench") -> Iterator[str]:
    """The URL of an empty database of ``kind`` ("sqlite" or "postgresql")."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"zhuqi-{label}-") as folder:
            yield f"sqlite:///{folder}/{label}.db"
        return
    store = Store(kind)
    name = store.new_name(label)
    store.create(name)
    try:
        yield store.url(name)
    finally:
        store.drop(name)


def _admin(statement: str, **params: object) -> object:
    """One statement on the server's ``test`` database, outside a transaction (``CREATE`` /
    ``DROP DATABASE``); its scalar result. The engine goes with it: no connection is left
    open to keep a later ``DROP DATABASE`` or a template copy waiting."""
    engine = create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            result = connection.execute(text(statement), params)
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


class Store:
    """Where the template and its copies live: PostgreSQL databases made from a template, or
    SQLite files copied with the backup API (the WAL included)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def url(self, name: str) -> str:
        return f"sqlite:///{name}" if self.kind == "sqlite" else f"{PG_SERVER}/{name}"

    def new_name(self, label: str) -> str:
        name = f"zhuqi_{label}_{uuid.uuid4().hex[:10]}"
        return str(Path(tempfile.gettempdir()) / f"{name}.db") if self.kind == "sqlite" else name

    def exists(self, name: str) -> bool:
        if self.kind == "sqlite":
            return Path(name).exists()
        return bool(_admin("SELECT count(*) FROM pg_database WHERE datname = :n", n=name))

    def create(self, name: str) -> None:
        if self.kind == "postgresql":
            _admin(f'CREATE DATABASE "{name}"')

    def copy(self, template: str) -> str:
        name = self.new_name("pubcopy")
        if self.kind == "sqlite":
            with sqlite3.connect(template) as source, sqlite3.connect(name) as target:
                source.backup(target)
            return name
        _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        _admin("CHECKPOINT")
        return name

    def drop(self, name: str) -> None:
        if self.kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(name + suffix).unlink(missing_ok=True)
            return
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def prepare(self, template: str) -> None:
        if self.kind == "postgresql":
            engine = create_engine(self.url(template), isolation_level="AUTOCOMMIT")
            with engine.connect() as connection:  # the copies inherit it
                connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_prewarm"))
            engine.dispose()


@contextmanager
def template_copy(kind: str, template: str, fill: Callable[[str], None]) -> Iterator[str]:
    """The URL of a throw-away copy of ``template``, which is kept: made (and filled by
    ``fill(url)``) only when missing, so a repeated bench skips its seeding."""
    store = Store(kind)
    if not store.exists(template):
        store.create(template)
        try:
            fill(store.url(template))
        except BaseException:
            store.drop(template)  # a half-filled template would be reused as if whole
            raise
    name = store.copy(template)
    try:
        yield store.url(name)
    finally:
        store.drop(name)


def count(text_value: str) -> int:
    """A size on the command line: ``10k``, ``100k``, ``2k`` or a plain number."""
    value = text_value.lower().replace("_", "")
    return int(float(value[:-1]) * 1000) if value.endswith("k") else int(value)
