"""Bulk writes and what must follow them, on both databases.

- :func:`insert_rows` streams rows with ``COPY ... FROM STDIN`` on PostgreSQL (psycopg 3) and
  with executemany batches elsewhere: a province's 80,000 proposals go in without one
  multi-row ``INSERT`` per few hundred rows to parse, and without one bind parameter per value.
- :func:`refresh_planner_statistics` is what every bulk load (seed, import) calls once it has
  committed: without statistics PostgreSQL planned a 40k-request run's joins as nested loops
  over "empty" tables and took twice as long (``ANALYZE``); SQLite gets ``PRAGMA optimize``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, Connection, Engine, Table, insert, text
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

BATCH = 2000  # rows per executemany batch where COPY is not available


def _dialect(bind: Session | Connection) -> str:
    return bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name


_TO_JSON = json.JSONEncoder(ensure_ascii=False).encode  # one encoder, not one per value
_AS_IS = frozenset({str, int, float, bool, datetime, date, type(None)})


def _copy_value(value: Any, *, json_column: bool) -> Any:
    """What COPY's text format takes for a value: a JSON column's value as its JSON text
    (``None`` included: ``null``, what the JSON type stores on the executemany path, not SQL
    NULL, so both paths and both databases store the same), enums by value."""
    if json_column:
        return _TO_JSON(value)
    if type(value) in _AS_IS:  # the common case first: a publish COPYs ~60,000 values
        return value
    if isinstance(value, dict | list):
        return _TO_JSON(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date | str | int | float | bool):
        return value
    raise TypeError(f"cannot COPY a {type(value).__name__}")


def _psycopg_cursor(session: Session) -> Any | None:
    """The session's psycopg 3 cursor, or ``None`` for another driver."""
    driver = session.connection().connection.driver_connection
    cursor = driver.cursor() if driver is not None else None
    return cursor if cursor is not None and hasattr(cursor, "copy") else None


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert ``rows`` (dicts with the same keys, every value given: no column defaults are
    applied on the COPY path) in the session's transaction; returns how many."""
    if not rows:
        return 0
    columns = list(rows[0])
    if _dialect(session) == "postgresql" and (cursor := _psycopg_cursor(session)) is not None:
        names = ", ".join(f'"{c}"' for c in columns)
        as_json = [isinstance(table.c[c].type, JSON) for c in columns]
        with cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            pairs = list(zip(columns, as_json, strict=True))
            for row in rows:
                copy.write_row([_copy_value(row[c], json_column=j) for c, j in pairs])
        return len(rows)
    for start in range(0, len(rows), BATCH):
        session.execute(insert(table), list(rows[start : start + BATCH]))
    return len(rows)


def refresh_planner_statistics(
    bind: Engine | Connection | Session,
    tables: Sequence[str] = (),
    columns: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Refresh the query planner's statistics after a bulk load (of ``tables``, or of all of
    ours). PostgreSQL: ``ANALYZE`` (transactional: inside a transaction it sees that
    transaction's rows), of only the ``columns`` given for a table if any: a table's row
    count is refreshed either way, and skipping its wide text columns makes it several times
    cheaper (``help_requests``: 0.06 s against 0.25 s at 15k rows). SQLite: ``PRAGMA
    optimize``, preceded by a bounded ``ANALYZE`` the first time (optimize alone skips
    tables it has never seen queried)."""
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            refresh_planner_statistics(connection, tables, columns)
        return
    dialect = _dialect(bind)
    if dialect == "postgresql":
        # Never a bare ``ANALYZE``: it also analyses the catalogs every database of the cluster
        # shares (``pg_authid``, ...), and waits for any other session analysing them inside an
        # open transaction: another database's seed or bulk load on the same server.
        names = list(tables) or our_tables(bind)
        for name in names:
            bind.execute(text(f'ANALYZE "{name}"{_column_list(name, columns)}'))
    elif dialect == "sqlite":
        analysed = bind.execute(
            text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")
        ).first()
        if analysed is None:
            bind.execute(text("PRAGMA analysis_limit = 1000"))
            bind.execute(text("ANALYZE"))
        bind.execute(text("PRAGMA optimize"))
    logger.info("planner statistics refreshed (%s)", dialect)


def our_tables(bind: Connection | Session) -> list[str]:
    """The PostgreSQL tables of the current schema: ours, never the catalogs the cluster
    shares (what a statistics refresh or a ``VACUUM`` names instead of running bare)."""
    return list(
        bind.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).scalars()
    )


def _column_list(table: str, columns: Mapping[str, Sequence[str]] | None) -> str:
    """`` ("a", "b")`` for ``ANALYZE``, or nothing for every column."""
    quoted = [f'"{name}"' for name in (columns or {}).get(table, ())]
    return f" ({', '.join(quoted)})" if quoted else ""
