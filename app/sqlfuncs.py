"""SQL the two databases spell differently: hours between timestamps, a median, JSON reads.

Why: ``/stats`` reduces every request in scope to a few figures. Shipping one row per request
to Python and reducing it there cost seconds at province scale (150k requests), so the
aggregation runs in the database and only one row per group comes back. Counts, sums and
means are portable SQL; these two are not:

- ``hours_between(later, earlier)``: PostgreSQL subtracts timestamps into an interval,
  SQLite stores text and needs ``julianday`` (a double: ~50 µs resolution, far below the
  millihour the figures are rounded to).
- ``median(x)``: PostgreSQL's ordered-set ``percentile_cont(0.5)``; SQLite has no median
  before 3.47's optional extension, so :func:`register_sqlite_functions` installs a small
  aggregate on every connection (app/db.py does it on connect). Both ignore NULLs and average
  the two middle values of an even count, as :func:`statistics.median` does.
- :func:`json_array_elements` and :func:`json_has_key` read providers' ``regions`` and
  ``skills`` (generic ``JSON`` columns: ``json`` on PostgreSQL, text on SQLite), so the
  supply's load is summed in the database instead of decoding 50k providers in Python.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from statistics import median as _median
from typing import Any

from sqlalchemy import ColumnElement, Float, func
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import SQLColumnExpression
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import TableValuedAlias

SQLITE_MEDIAN = "zhuqi_median"


class hours_between(FunctionElement[float]):  # noqa: N801 - a SQL function, named like one
    """``later - earlier`` in hours, as a double; NULL if either is NULL."""

    type = Float()
    inherit_cache = True
    name = "hours_between"

    def __init__(self, later: SQLColumnExpression[Any], earlier: SQLColumnExpression[Any]) -> None:
        super().__init__(later, earlier)


class median(FunctionElement[float]):  # noqa: N801 - a SQL aggregate, named like one
    """The median of the non-NULL values of a group (NULL when there are none)."""

    type = Float()
    inherit_cache = True
    name = "median"

    def __init__(self, value: SQLColumnExpression[Any]) -> None:
        super().__init__(value)


def _arguments(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(argument, **kw) for argument in element.clauses]


@compiles(hours_between, "postgresql")
def _hours_between_postgresql(element: hours_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = _arguments(element, compiler, **kw)
    return f"(CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) AS DOUBLE PRECISION) / 3600.0)"


@compiles(hours_between, "sqlite")
def _hours_between_sqlite(element: hours_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = _arguments(element, compiler, **kw)
    return f"((julianday({later}) - julianday({earlier})) * 24.0)"


@compiles(median, "postgresql")
def _median_postgresql(element: median, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _arguments(element, compiler, **kw)
    return f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {value})"


@compiles(median, "sqlite")
def _median_sqlite(element: median, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _arguments(element, compiler, **kw)
    return f"{SQLITE_MEDIAN}({value})"


class _SQLiteMedian:
    """The aggregate SQLite calls: collects the group's values, answers their median."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def step(self, value: float | None) -> None:
        if value is not None:
            self.values.append(value)

    def finalize(self) -> float | None:
        return _median(self.values) if self.values else None


class median_values(FunctionElement[bytes]):  # noqa: N801 - a SQL aggregate, named like one
    """SQLite only: a group's non-NULL values, packed (doubles), for :class:`median_of` to
    answer the group's median and :class:`merged_median` the median over several groups."""

    inherit_cache = True
    name = "zhuqi_median_values"

    def __init__(self, value: SQLColumnExpression[Any]) -> None:
        super().__init__(value)


class median_of(FunctionElement[float]):  # noqa: N801 - a SQL function, named like one
    """SQLite only: the median of values packed by :class:`median_values` (NULL if none)."""

    type = Float()
    inherit_cache = True
    name = "zhuqi_median_of"

    def __init__(self, packed: SQLColumnExpression[Any]) -> None:
        super().__init__(packed)


class merged_median(FunctionElement[float]):  # noqa: N801 - a SQL aggregate, named like one
    """SQLite only: the median of every value packed in a group's rows by
    :class:`median_values`: the same number as :class:`median` over the rows they came from."""

    type = Float()
    inherit_cache = True
    name = "zhuqi_merged_median"

    def __init__(self, packed: SQLColumnExpression[Any]) -> None:
        super().__init__(packed)


@compiles(median_values, "sqlite")
@compiles(median_of, "sqlite")
@compiles(merged_median, "sqlite")
def _packed_sqlite(
    element: median_values | median_of | merged_median, compiler: SQLCompiler, **kw: Any
) -> str:
    return f"{element.name}({', '.join(_arguments(element, compiler, **kw))})"


def _unpack(packed: bytes | None) -> array[float]:
    values = array("d")
    if packed:
        values.frombytes(packed)
    return values


def _median_or_none(values: Sequence[float]) -> float | None:
    return _median(values) if values else None


class _SQLiteValues:
    def __init__(self) -> None:
        self.values = array("d")

    def step(self, value: float | None) -> None:
        if value is not None:
            self.values.append(value)

    def finalize(self) -> bytes:
        return self.values.tobytes()


class _SQLiteMergedMedian:
    def __init__(self) -> None:
        self.values = array("d")

    def step(self, packed: bytes | None) -> None:
        if packed:
            self.values.frombytes(packed)

    def finalize(self) -> float | None:
        return _median_or_none(self.values)


def json_array_elements(column: SQLColumnExpression[Any], dialect: str) -> TableValuedAlias:
    """The elements of a JSON array of strings as a FROM with one column, ``value``."""
    if dialect == "postgresql":
        return func.json_array_elements_text(column).table_valued("value")
    return func.json_each(column).table_valued("value")


def json_has_key(column: SQLColumnExpression[Any], key: str, dialect: str) -> ColumnElement[bool]:
    """Whether a JSON object has ``key`` (whatever its value, ``null`` included)."""
    if dialect == "postgresql":
        return func.json_extract_path(column, key).is_not(None)
    quoted = key.replace("\\", "\\\\").replace('"', '\\"')
    return func.json_type(column, f'$."{quoted}"').is_not(None)


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """Install the SQLite side of :class:`median` on one DB-API connection."""
    dbapi_connection.create_aggregate(SQLITE_MEDIAN, 1, _SQLiteMedian)
    dbapi_connection.create_aggregate(median_values.name, 1, _SQLiteValues)
    dbapi_connection.create_aggregate(merged_median.name, 1, _SQLiteMergedMedian)
    dbapi_connection.create_function(
        median_of.name, 1, lambda packed: _median_or_none(_unpack(packed)), deterministic=True
    )
