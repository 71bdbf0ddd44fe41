"""Throw-away databases for the benchmarks: an SQLite file in a temporary folder, or a fresh
PostgreSQL database on the test server, dropped afterwards even when the bench fails."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

PG_SERVER = os.environ.get("ZHUQI_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")


@contextmanager
def scratch_database(kind: str, label: str = "bench") -> Iterator[str]:
    """The URL of an empty database of ``kind`` ("sqlite" or "postgresql")."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"zhuqi-{label}-") as folder:
            yield f"sqlite:///{folder}/{label}.db"
        return
    name = f"zhuqi_{label}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def count(text_value: str) -> int:
    """A size on the command line: ``10k``, ``100k``, ``2k`` or a plain number."""
    value = text_value.lower().replace("_", "")
    return int(float(value[:-1]) * 1000) if value.endswith("k") else int(value)
