"""Region scoping: a coordinator's scope is a set of GB/T 2260 code prefixes.

Every domain filters by it (requests, plans, events, supervision), so it lives below them
all; kept in the enterprises repository it made the audit trail import a domain that
imports the audit trail.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, SQLColumnExpression, false, or_

from app.common.shapes import Param, literal


def region_clause(
    column: SQLColumnExpression[str], prefixes: tuple[str, ...], param: Param = literal
) -> ColumnElement[bool]:
    """``column`` (a region code) lies under one of ``prefixes``; no prefixes, nowhere.
    Prefix ``i`` is ``param`` ``scope_region_{i}`` (``Principal.scope_params``)."""
    if not prefixes:
        return false()
    return or_(*(column.startswith(param(f"scope_region_{i}", p)) for i, p in enumerate(prefixes)))
