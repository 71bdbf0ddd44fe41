"""The assignment conditions plan building queries by."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from app.common.idsets import in_ids
from app.models import (
    LIVE_ASSIGNMENT_STATUSES,
    OPEN_ASSIGNMENT_STATUSES,
    Assignment,
    HelpRequest,
    Plan,
)


def open_assignment() -> ColumnElement[bool]:
    """An assignment that holds a slot now (offered, accepted, active): its provider owns
    the request's provider milestones."""
    return Assignment.status.in_(OPEN_ASSIGNMENT_STATUSES)


def live_assignment() -> ColumnElement[bool]:
    """An assignment someone works or worked on (open, or completed): who helps, in a summary."""
    return Assignment.status.in_(LIVE_ASSIGNMENT_STATUSES)


def of_plan(plan: Plan) -> ColumnElement[bool]:
    """A request of ``plan``, found through its enterprise: a plan's requests are all its
    enterprise's, and ``help_requests`` has no index on ``plan_id`` (see
    :func:`request_of_plans`)."""
    return (HelpRequest.enterprise_id == plan.enterprise_id) & (HelpRequest.plan_id == plan.id)


def request_of_plans(session: Session, owners: Mapping[int, int]) -> ColumnElement[bool]:
    """A request of one of the plans ``owners`` maps (plan id → its enterprise's id), found
    through the plans' enterprises, whose ids are bound as values: every caller holds the
    plans' rows already.

    ``help_requests`` keeps no index on ``plan_id`` nor on ``status``: a publish links
    thousands of requests to their plans and moves them to ``matched`` in one ``UPDATE``,
    and an index on either column made every row of it a new tuple elsewhere plus an entry in
    each of the table's indexes instead of a heap-only update on its own page (the table's
    fillfactor leaves that room). Bound enterprise ids keep the planner's estimate right
    whatever a bulk change did to the statistics since the last ``ANALYZE``: as a subquery on
    ``plans`` (just created, never analysed) the join started from every open assignment.

    SQLite gets the same rows as a set of request ids: with the condition itself in a
    statement joined to assignments it scans every assignment and looks each request up (its
    sampled statistics, ``PRAGMA analysis_limit``, cannot see how few ids ``json_each``
    carries)."""
    enterprises = sorted(set(owners.values()))
    mine = in_ids(HelpRequest.enterprise_id, enterprises) & in_ids(
        HelpRequest.plan_id, list(owners)
    )
    if session.get_bind().dialect.name == "sqlite":
        return HelpRequest.id.in_(select(HelpRequest.id).where(mine))
    return mine
