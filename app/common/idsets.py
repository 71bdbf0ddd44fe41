"""Id sets of any size as one bind parameter: ``column = ANY(:ids)`` / ``json_each(:ids)``.

A plain ``column.in_(ids)`` binds one parameter per id: past 65,535 of them PostgreSQL
refuses the statement ("number of parameters must be between 0 and 65535"), SQLite past
32,766, and long before that the server spends its time parsing. :func:`in_ids` sends the
whole set as a single value instead — a PostgreSQL ``BIGINT[]`` array, or JSON text that
SQLite unpacks with ``json_each`` — so the statement's text and parameter count no longer
depend on how many rows a run has.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import BigInteger, Boolean, ColumnElement, String, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler


class InIds(ColumnElement[bool]):
    """``column IN ids`` rendered per dialect with the ids bound as one value."""

    inherit_cache = False  # the ids are baked into the element, not cacheable bind values
    type = Boolean()
    _is_implicitly_boolean = True  # a predicate: never rendered as "(...) = 1" on SQLite

    def __init__(self, column: ColumnElement[Any], ids: Iterable[int]) -> None:
        self.column = column
        self.ids = sorted({int(i) for i in ids})


def in_ids(column: Any, ids: Iterable[int]) -> ColumnElement[bool]:
    """``column`` is one of ``ids``, however many there are (an empty set matches nothing)."""
    return InIds(column, ids)


@compiles(InIds)
def _json_each(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    """SQLite (and any other dialect with JSON1): ``IN (SELECT value FROM json_each(?))``."""
    column = compiler.process(element.column, **kw)
    ids = compiler.process(bindparam(None, json.dumps(element.ids), type_=String()), **kw)
    return f"{column} IN (SELECT value FROM json_each({ids}))"


@compiles(InIds, "postgresql")
def _any_array(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    ids = compiler.process(bindparam(None, element.ids, type_=ARRAY(BigInteger())), **kw)
    return f"{column} = ANY({ids})"
