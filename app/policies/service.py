"""The policy catalogue: everyone reads it, admins keep it. Services flush, never commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from app.common.pagination import PageParams, paginate
from app.common.principal import Principal
from app.common.schemas import Page
from app.errors import NotFound
from app.events import service as event_service
from app.models import Policy
from app.policies.schemas import PolicyCreate, PolicyRead, PolicyUpdate
from app.taxonomy import service as taxonomy_service


@dataclass(frozen=True)
class PolicyFilter:
    valid_on: date | None = None
    q: str | None = None


def _filtered(f: PolicyFilter) -> Select[Policy]:
    statement = select(Policy)
    if f.valid_on:
        statement = statement.where(
            or_(Policy.valid_from_date.is_(None), Policy.valid_from_date <= f.valid_on),
            or_(Policy.valid_until_date.is_(None), Policy.valid_until_date >= f.valid_on),
        )
    if f.q:
        statement = statement.where(
            Policy.title.icontains(f.q, autoescape=True)
            | Policy.summary.icontains(f.q, autoescape=True)
        )
    return statement


def list_(session: Session, *, filters: PolicyFilter, page: PageParams) -> Page[PolicyRead]:
    return paginate(session, _filtered(filters), Policy.id, page, PolicyRead.model_validate)


def get(session: Session, *, policy_id: int) -> Policy:
    policy = session.get(Policy, policy_id)
    if policy is None:
        raise NotFound(f"policy {policy_id} not found")
    return policy


def create(session: Session, *, principal: Principal | None, data: PolicyCreate) -> Policy:
    taxonomy_service.ensure_known(session, data.categories, field="categories")
    policy = Policy(
        **data.model_dump(mode="json", exclude={"valid_from_date", "valid_until_date"}),
        valid_from_date=data.valid_from_date,
        valid_until_date=data.valid_until_date,
    )
    session.add(policy)
    session.flush()
    event_service.record(session, actor=principal, action="policy.created", entity=policy)
    return policy


def update(session: Session, *, principal: Principal, policy: Policy, data: PolicyUpdate) -> Policy:
    changes = data.model_dump(mode="json", exclude_unset=True)
    if changes.get("categories"):
        taxonomy_service.ensure_known(session, changes["categories"], field="categories")
    before = event_service.snapshot(policy)
    for key in changes:
        value = getattr(data, key)
        if value is not None or key in ("valid_from_date", "valid_until_date"):
            setattr(policy, key, changes[key] if isinstance(value, list) else value)
    session.flush()
    event_service.record(
        session, actor=principal, action="policy.updated", entity=policy, before=before
    )
    return policy
