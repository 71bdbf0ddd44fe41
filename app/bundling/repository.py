"""The assignment conditions plan building queries by."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from app.common.idsets import in_ids
from app.models import LIVE_ASSIGNMENT_STATUSES, OPEN_ASSIGNMENT_STATUSES, Assignment, HelpRequest


def open_assignment() -> ColumnElement[bool]:
    """An assignment that holds a slot now (offered, accepted, active): its provider owns
    the request's provider milestones."""
    return Assignment.status.in_(OPEN_ASSIGNMENT_STATUSES)


def live_assignment() -> ColumnElement[bool]:
    """An assignment someone works or worked on (open, or completed): who helps, in a summary."""
    return Assignment.status.in_(LIVE_ASSIGNMENT_STATUSES)


def request_of_plans(session: Session, plan_ids: Sequence[int]) -> ColumnElement[bool]:
    """A request of one of ``plan_ids``, phrased per database for a statement joining
    assignments.

    SQLite gets the same rows as a set of request ids: with ``in_ids`` on ``plan_id`` joined
    to assignments it scans every assignment and looks each request up (its sampled
    statistics, ``PRAGMA analysis_limit``, say a plan holds a thousand requests, and it
    cannot see how few ids ``json_each`` carries): 4-8 ms of a decline's plan update at
    10k x 10k, twice, against 0.1-0.7 ms through the ``plan_id`` index. PostgreSQL keeps the
    plain form: the subquery made it hash the whole table (one plan: 2.7 ms -> 36 ms)."""
    if session.get_bind().dialect.name == "sqlite":
        return HelpRequest.id.in_(
            select(HelpRequest.id).where(in_ids(HelpRequest.plan_id, plan_ids))
        )
    return in_ids(HelpRequest.plan_id, plan_ids)
