"""Id sets of any size as one bind parameter: ``column = ANY(:ids)`` / ``json_each(:ids)``.

A plain ``column.in_(ids)`` binds one parameter per id: past 65,535 of them PostgreSQL
refuses the statement ("number of parameters must be between 0 and 65535"), SQLite past
32,766, and long before that the server spends its time parsing. :func:`in_ids` sends the
whole set as a single value instead — a PostgreSQL ``BIGINT[]`` array, or JSON text that
SQLite unpacks with ``json_each`` — so the statement's text and parameter count no longer
depend on how many rows a run has.

On PostgreSQL the array travels as its text form (``'{1,2,3}'``), not as a Python list:
psycopg adapts a list element by element in Python, ~6 ms for the 3,000 ids of a 10k publish
against ~0.3 ms to join them into one string, and a publish binds six such sets. The text is
sent untyped and cast in the statement (``$1::BIGINT[]``), so the server reads it as the
array itself when it binds the value: the planner sees the same constant array as before
(same plans). A text-typed parameter cast to an array instead (``$1::VARCHAR::BIGINT[]``)
is an expression the planner does not fold; evaluated per row, it made a 10k publish's
request ``UPDATE`` take seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Boolean, ColumnElement, String, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import coercions, roles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import UserDefinedType


class _ArrayText(UserDefinedType[str]):
    """A PostgreSQL array's text, bound as is and with no cast of its own (psycopg sends a
    ``str`` untyped): the statement casts it to the array type."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "BIGINT[]"


class InIds(ColumnElement[bool]):
    """``column IN ids`` rendered per dialect with the ids bound as one value.

    Cacheable: the ids travel as bind parameters (a JSON text for SQLite, an array's text for
    PostgreSQL; each dialect renders its own and ignores the other), so a statement is
    compiled once per shape, not once per call (a decline ran 24 of its 55 statements through
    the compiler every time, ~20-40 ms of its ~110-150 ms of CPU at 10k x 10k). The SQL
    text, and so each database's plan, is the same as when the element was not cacheable:
    SQLite's time in its statements was the same either way (3-25 ms a decline)."""

    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's own class-level protocol)
        ("column", InternalTraversal.dp_clauseelement),
        ("as_json", InternalTraversal.dp_clauseelement),
        ("as_array", InternalTraversal.dp_clauseelement),
    ]
    type = Boolean()
    _is_implicitly_boolean = True  # a predicate: never rendered as "(...) = 1" on SQLite

    def __init__(self, column: Any, ids: Iterable[int]) -> None:
        self.column = coercions.expect(roles.ExpressionElementRole, column)
        self.ids = sorted({int(i) for i in ids})
        listed = ",".join(map(str, self.ids))  # JSON's and PostgreSQL's array text alike
        self.as_json = bindparam(None, f"[{listed}]", type_=String(), unique=True)
        self.as_array = bindparam(None, f"{{{listed}}}", type_=_ArrayText(), unique=True)


def in_ids(column: Any, ids: Iterable[int]) -> ColumnElement[bool]:
    """``column`` is one of ``ids``, however many there are (an empty set matches nothing)."""
    return InIds(column, ids)


@compiles(InIds)
def _json_each(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    """SQLite (and any other dialect with JSON1): ``IN (SELECT value FROM json_each(?))``."""
    column = compiler.process(element.column, **kw)
    ids = compiler.process(element.as_json, **kw)
    return f"{column} IN (SELECT value FROM json_each({ids}))"


@compiles(InIds, "postgresql")
def _any_array(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    ids = compiler.process(element.as_array, **kw)
    return f"{column} = ANY({ids}::BIGINT[])"
