"""Queries over plans; ``visible_to`` is the one place their role scoping lives."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, false, select

from app.assignments.transitions import LIVE
from app.bundling.repository import of_plan, open_assignment
from app.common.principal import Principal
from app.common.regions import region_clause
from app.models import Assignment, Enterprise, FollowUp, HelpRequest, Milestone, Plan


def visible_to(principal: Principal) -> Select[Plan]:
    statement = select(Plan).join(Enterprise, Enterprise.id == Plan.enterprise_id)
    if principal.is_admin:
        return statement
    if principal.is_coordinator:
        return statement.where(region_clause(Enterprise.region_code, principal.region_prefixes))
    if principal.is_enterprise:
        return statement.where(Plan.enterprise_id == principal.enterprise_id)
    if principal.is_provider:
        served = (
            select(HelpRequest.plan_id)
            .join(Assignment, Assignment.request_id == HelpRequest.id)
            .where(Assignment.provider_id == principal.provider_id, Assignment.status.in_(LIVE))
        )
        return statement.where(Plan.id.in_(served))
    return statement.where(false())


def plan_requests(plan: Plan, provider_id: int | None) -> Select[HelpRequest]:
    """A plan's requests; for a provider only those it holds a live assignment on."""
    statement = select(HelpRequest).where(of_plan(plan))
    if provider_id is None:
        return statement
    serving = select(Assignment.request_id).where(
        Assignment.provider_id == provider_id, Assignment.status.in_(LIVE)
    )
    return statement.where(HelpRequest.id.in_(serving))


def provider_steps(provider_id: int, request_ids: Sequence[int]) -> Select[Milestone]:
    """The provider steps of those requests the provider holds an open assignment on."""
    serving = select(Assignment.request_id).where(
        Assignment.provider_id == provider_id, open_assignment()
    )
    return (
        select(Milestone)
        .where(
            Milestone.request_id.in_(list(request_ids)),
            Milestone.request_id.in_(serving),
            Milestone.owner_role == "provider",
        )
        .order_by(Milestone.request_id, Milestone.position, Milestone.id)
    )


def follow_ups_of(plan_id: int, provider_id: int | None) -> Select[FollowUp]:
    """A plan's follow-ups; for a provider only those on its own assignments."""
    statement = select(FollowUp).where(FollowUp.plan_id == plan_id)
    if provider_id is None:
        return statement
    own = select(Assignment.id).where(Assignment.provider_id == provider_id)
    return statement.where(FollowUp.assignment_id.in_(own))
