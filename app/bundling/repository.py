"""The assignment conditions plan building queries by."""

from __future__ import annotations

from sqlalchemy import ColumnElement

from app.models import LIVE_ASSIGNMENT_STATUSES, OPEN_ASSIGNMENT_STATUSES, Assignment


def open_assignment() -> ColumnElement[bool]:
    """An assignment that holds a slot now (offered, accepted, active): its provider owns
    the request's provider milestones."""
    return Assignment.status.in_(OPEN_ASSIGNMENT_STATUSES)


def live_assignment() -> ColumnElement[bool]:
    """An assignment someone works or worked on (open, or completed): who helps, in a summary."""
    return Assignment.status.in_(LIVE_ASSIGNMENT_STATUSES)
