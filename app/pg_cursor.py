"""A psycopg cursor whose ``description`` costs what SQLAlchemy reads of it.

SQLAlchemy reads ``cursor.description`` once for every statement that returns rows, and takes
two items of each column: its name and its type's oid (``rec[0]``, ``rec[1]``). psycopg builds
a ``Column`` per column for it, each asking the result for five attributes and looking up
the type's adapter. Profiled on ``POST /assignments/{id}/accept``, that was 13 % of the
request thread's time; for a 19-column row it is 30-39 µs a statement against 4-7 µs here
(measured with ``timeit`` on this machine). Every statement of the request path pays it,
reads included.

The columns here are named tuples with the seven DB-API fields: name and type oid as
psycopg gives them; the sizes, precision and scale, which nothing of ours reads, are None
(DB-API allows it). Installed by ``app.db.make_engine`` for the psycopg driver only; a
client-side cursor (server-side cursors keep psycopg's own class).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from psycopg import Cursor
from psycopg.pq import ExecStatus

_ROWS = (ExecStatus.TUPLES_OK, ExecStatus.SINGLE_TUPLE, ExecStatus.TUPLES_CHUNK)


class ColumnInfo(NamedTuple):
    """One column of ``DescribedCursor.description`` (DB-API's seven items)."""

    name: str
    type_code: int
    display_size: int | None = None
    internal_size: int | None = None
    precision: int | None = None
    scale: int | None = None
    null_ok: bool | None = None


class DescribedCursor(Cursor[Any]):
    """psycopg's cursor with the lean ``description`` the module doc explains."""

    @property
    def description(self) -> list[ColumnInfo] | None:  # type: ignore[override]
        """As psycopg's: columns when the result has fields or says it returned tuples (so
        ``SELECT ;`` has an empty list), ``None`` otherwise."""
        result = self.pgresult
        if not result or not (result.nfields or result.status in _ROWS):
            return None
        encoding = self._encoding
        return [
            ColumnInfo(
                (name.decode(encoding) if (name := result.fname(index)) else f"column_{index + 1}"),
                result.ftype(index),
            )
            for index in range(result.nfields)
        ]
