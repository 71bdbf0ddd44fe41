"""The statements behind each export: the list's own ``visible_to`` and ``filtered``, with
the export's columns swapped in. Scoping therefore has exactly one definition per domain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select

from app.assignments import repository as assignment_repository
from app.common.principal import Principal
from app.exports.columns import Column
from app.models import Assignment, Feedback, HelpRequest, Plan, PlanStatus, Provider
from app.plans import repository as plan_repository
from app.providers import repository as provider_repository
from app.requests import repository as request_repository


def _columns(statement: Select[Any], columns: Sequence[Column]) -> Select[Any]:
    return statement.with_only_columns(*(c.expr for c in columns), maintain_column_froms=False)


def requests(
    principal: Principal, filters: request_repository.RequestFilter, columns: Sequence[Column]
) -> Select[Any]:
    scoped = request_repository.filtered(request_repository.visible_to(principal), filters)
    joined = scoped.outerjoin(Plan, Plan.id == HelpRequest.plan_id)
    return _columns(joined, columns).order_by(HelpRequest.id)


def assignments(
    principal: Principal,
    filters: assignment_repository.AssignmentFilter,
    columns: Sequence[Column],
) -> Select[Any]:
    scoped = assignment_repository.filtered(assignment_repository.visible_to(principal), filters)
    joined = scoped.join(Provider, Provider.id == Assignment.provider_id).outerjoin(
        Feedback, Feedback.assignment_id == Assignment.id
    )
    return _columns(joined, columns).order_by(Assignment.id)


def plans(
    principal: Principal, status: PlanStatus | None, columns: Sequence[Column]
) -> Select[Any]:
    scoped = plan_repository.visible_to(principal)
    if status is not None:
        scoped = scoped.where(Plan.status == status)
    return _columns(scoped, columns).order_by(Plan.id)


def providers(
    principal: Principal,
    filters: provider_repository.ProviderFilter,
    columns: Sequence[Column],
) -> Select[Any]:
    scoped = provider_repository.filtered(provider_repository.visible_to(principal), filters)
    return _columns(scoped, columns).order_by(Provider.id)
