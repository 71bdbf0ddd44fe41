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

from sqlalchemy import select
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


def lock_assignment_path(session: Session, assignment: Assignment) -> None:
    """What answering an offer may write: the enterprise (a re-match attaches its requests to
    its plan), the plan, the request, the assignment; providers come last, in the re-match.
    """
    row = session.execute(
        select(HelpRequest.enterprise_id, HelpRequest.plan_id).where(
            HelpRequest.id == assignment.request_id
        )
    ).one_or_none()
    enterprise_id, plan_id = row if row is not None else (None, None)
    lock_in_order(
        session,
        enterprises=[enterprise_id],
        plans=[plan_id],
        requests=[assignment.request_id],
        assignments=[assignment.id],
    )


def lock_request_path(
    session: Session, *, enterprise_id: int, plan_id: int | None, request_id: int
) -> None:
    """What settling a request writes: its enterprise's plan, the request, its assignments."""
    lock_in_order(session, enterprises=[enterprise_id], plans=[plan_id], requests=[request_id])
