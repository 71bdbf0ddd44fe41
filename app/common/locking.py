"""The one global order in which a use case takes row locks.

    enterprise → plan → request → assignment → provider

Two transactions that lock the same rows in opposite orders deadlock on PostgreSQL (withdraw
took request → assignment while accept took assignment → request: 63 of 90 such races
answered 500). The rule: a use case that will write rows of several of these tables first
calls ``lock_in_order`` with every row it is going to touch, before any UPDATE; rows of one
table are locked in ascending id. Compare-and-set UPDATEs after that only re-take locks the
transaction already holds.

SQLite has no row locks (``FOR UPDATE`` renders as nothing): there ``BEGIN IMMEDIATE``
serialises writers, so the order costs nothing and changes nothing. What a deadlock still
slips through (a path not yet ordered, a lock the database takes on its own) is retried
by ``app.common.retry`` and never answers 500.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.models import Assignment, Enterprise, HelpRequest, Plan, Provider

LOCK_ORDER: tuple[type[Any], ...] = (Enterprise, Plan, HelpRequest, Assignment, Provider)


def lock_rows(session: Session, model: type[Any], ids: Iterable[int | None]) -> None:
    """``SELECT id ... FOR UPDATE`` on these rows of one table, in ascending id."""
    wanted = sorted({i for i in ids if i is not None})
    if wanted:
        session.execute(
            select(model.id).where(model.id.in_(wanted)).order_by(model.id).with_for_update()
        )


def lock_in_order(
    session: Session,
    *,
    enterprises: Iterable[int | None] = (),
    plans: Iterable[int | None] = (),
    requests: Iterable[int | None] = (),
    assignments: Iterable[int | None] = (),
    providers: Iterable[int | None] = (),
) -> None:
    """Lock every row a use case will write, table by table in ``LOCK_ORDER``."""
    by_model: dict[type[Any], Iterable[int | None]] = {
        Enterprise: enterprises,
        Plan: plans,
        HelpRequest: requests,
        Assignment: assignments,
        Provider: providers,
    }
    for model in LOCK_ORDER:
        lock_rows(session, model, by_model[model])


# Built once (bind ``request_id``): building it and its cache key on each answer cost more
# CPU than running it.
_ASSIGNMENT_PATH = (
    select(HelpRequest, Enterprise.region_code)
    .outerjoin(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
    .where(HelpRequest.id == bindparam("request_id"))
    .with_for_update(of=HelpRequest)
    .execution_options(populate_existing=True)
)


def lock_assignment_path(
    session: Session, assignment: Assignment
) -> tuple[HelpRequest | None, str]:
    """Lock what answering an offer writes, in the global order: the request, then (by the
    caller's compare-and-set UPDATE, its very next statement) the assignment.

    One statement: the request is loaded and locked by the same read, its enterprise's region
    (the answer's events are keyed on it) rides along on an outer join that locks nothing.
    The enterprise and the plan are not locked: an answer writes neither (its re-match is
    the worker's, which locks them in its own transaction), and taking a suffix of the
    order cannot deadlock against a use case that takes the whole of it. Returns the
    request (the identity map holds it only while someone does) and the region code (""
    if the enterprise is gone).
    """
    row = session.execute(_ASSIGNMENT_PATH, {"request_id": assignment.request_id}).one_or_none()
    if row is None:
        return None, ""
    return row[0], row[1] or ""


def lock_request_path(
    session: Session, *, enterprise_id: int, plan_id: int | None, request_id: int
) -> None:
    """What settling a request writes: its enterprise's plan, the request, its assignments."""
    lock_in_order(session, enterprises=[enterprise_id], plans=[plan_id], requests=[request_id])
