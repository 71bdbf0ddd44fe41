"""Region scoping: a coordinator's scope is a set of GB/T 2260 code prefixes.

Every domain filters by it (requests, plans, events, supervision), so it lives below them
all; kept in the enterprises repository it made the audit trail import a domain that
imports the audit trail.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, SQLColumnExpression, false, or_


def region_clause(
    column: SQLColumnExpression[str], prefixes: tuple[str, ...]
) -> ColumnElement[bool]:
    """``column`` (a region code) lies under one of ``prefixes``; no prefixes, nowhere."""
    if not prefixes:
        return false()
    return or_(*(column.startswith(p) for p in prefixes))
