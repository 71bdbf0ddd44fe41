"""Reads that put names next to ids on a page, each through the owning domain's ``visible_to``.

Pages show "which company, which expert, which request" beside an assignment; these look-ups
go through the same scoping functions as the API's lists, in one query per kind of row (no
N+1), so a page can never show a name its reader could not fetch from the API.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.assignments import repository as assignment_repository
from app.common.principal import Principal
from app.enterprises import repository as enterprise_repository
from app.models import Assignment, Enterprise, Feedback, HelpRequest, Provider
from app.providers import repository as provider_repository
from app.requests import repository as request_repository


def providers_by_id(
    session: Session, principal: Principal, ids: Iterable[int]
) -> dict[int, Provider]:
    wanted = set(ids)
    if not wanted:
        return {}
    statement = provider_repository.visible_to(principal).where(Provider.id.in_(wanted))
    return {p.id: p for p in session.scalars(statement)}


def requests_by_id(
    session: Session, principal: Principal, ids: Iterable[int]
) -> dict[int, HelpRequest]:
    wanted = set(ids)
    if not wanted:
        return {}
    statement = request_repository.visible_to(principal).where(HelpRequest.id.in_(wanted))
    return {r.id: r for r in session.scalars(statement)}


def enterprises_by_id(
    session: Session, principal: Principal, ids: Iterable[int]
) -> dict[int, Enterprise]:
    wanted = set(ids)
    if not wanted:
        return {}
    statement = enterprise_repository.visible_to(principal).where(Enterprise.id.in_(wanted))
    return {e.id: e for e in session.scalars(statement)}


def rated_assignment_ids(session: Session, principal: Principal, ids: Iterable[int]) -> set[int]:
    wanted = set(ids)
    if not wanted:
        return set()
    visible = assignment_repository.visible_to(principal).where(Assignment.id.in_(wanted))
    statement = select(Feedback.assignment_id).where(
        Feedback.assignment_id.in_(visible.with_only_columns(Assignment.id))
    )
    return set(session.scalars(statement))


def assignments_of_provider(
    session: Session, principal: Principal, statuses: Iterable[str], limit: int
) -> list[Assignment]:
    """The provider's own offers and work (``visible_to`` keeps a provider to its own)."""
    statement = (
        assignment_repository.visible_to(principal)
        .where(Assignment.status.in_(list(statuses)))
        .order_by(Assignment.id.desc())
        .limit(limit)
    )
    return list(session.scalars(statement))
