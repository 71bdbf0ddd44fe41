"""Which response model a principal gets for a plan: chosen by role, never filtered after.

Staff read :class:`PlanDetail`; the enterprise its own plan without competitors in the
explanations; a provider only the parts of its own assignments (:class:`PlanDetailForProvider`).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from app.common.principal import Principal
from app.models import Plan
from app.plans import service as plan_service
from app.plans.schemas import (
    PlanDetail,
    PlanDetailForEnterprise,
    PlanDetailForProvider,
    PlanRead,
    PlanReadForProvider,
)

PlanView = PlanRead | PlanReadForProvider
PlanDetailView = PlanDetail | PlanDetailForEnterprise | PlanDetailForProvider


def plan_view(principal: Principal, plan: Plan) -> PlanView:
    if principal.is_provider:
        return PlanReadForProvider.model_validate(plan)
    return PlanRead.model_validate(plan)


def plan_views(principal: Principal, plans: Iterable[Plan]) -> list[PlanView]:
    return [plan_view(principal, p) for p in plans]


def plan_detail(session: Session, principal: Principal, plan: Plan) -> PlanDetailView:
    if principal.is_provider:
        parts = plan_service.detail(session, plan, provider_id=principal.provider_id)
        head = PlanReadForProvider.model_validate(plan).model_dump()
        return PlanDetailForProvider.model_validate(head | parts)
    parts = plan_service.detail(session, plan)
    model = PlanDetailForEnterprise if principal.is_enterprise else PlanDetail
    return model.model_validate(PlanRead.model_validate(plan).model_dump() | parts)
