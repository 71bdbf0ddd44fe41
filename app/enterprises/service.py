"""Use cases on the enterprise registry. Services flush, never commit."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.common.pagination import PageParams, paginate
from app.common.schemas import Page
from app.enterprises import repository
from app.enterprises.schemas import EnterpriseCreate, EnterpriseRead, EnterpriseUpdate
from app.errors import Conflict, Forbidden, NotFound
from app.events import service as event_service
from app.models import Enterprise


def get(session: Session, *, principal: Principal, enterprise_id: int) -> Enterprise:
    enterprise = session.scalar(
        repository.visible_to(principal).where(Enterprise.id == enterprise_id)
    )
    if enterprise is None:
        raise NotFound(f"enterprise {enterprise_id} not found")
    return enterprise


def list_(
    session: Session,
    *,
    principal: Principal,
    filters: repository.EnterpriseFilter,
    page: PageParams,
) -> Page[EnterpriseRead]:
    statement = repository.filtered(repository.visible_to(principal), filters)
    return paginate(session, statement, Enterprise.id, page, EnterpriseRead.model_validate)


def _ensure_unique_uscc(session: Session, uscc: str) -> None:
    existing = session.scalar(select(Enterprise.id).where(Enterprise.uscc == uscc))
    if existing is not None:
        raise Conflict(f"an enterprise with USCC {uscc} is already registered", field="uscc")


def _ensure_region_allowed(principal: Principal, region_code: str) -> None:
    if not principal.covers_region(region_code):
        raise Forbidden(f"region {region_code} is outside your regions", field="region_code")


def create(session: Session, *, principal: Principal | None, data: EnterpriseCreate) -> Enterprise:
    """Coordinators register enterprises in their regions; self-registration passes no principal."""
    if principal is not None:
        _ensure_region_allowed(principal, data.region_code)
    _ensure_unique_uscc(session, data.uscc)
    enterprise = Enterprise(**data.model_dump())
    session.add(enterprise)
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="enterprise.created",
        entity=enterprise,
        region_code=enterprise.region_code,
    )
    return enterprise


def update(
    session: Session, *, principal: Principal, enterprise: Enterprise, data: EnterpriseUpdate
) -> Enterprise:
    own = principal.is_enterprise and principal.enterprise_id == enterprise.id
    if not (own or principal.covers_region(enterprise.region_code)):
        raise Forbidden("only the enterprise itself or its coordinators may edit it")
    changes = data.model_dump(exclude_unset=True)
    if changes.get("region_code") and not own:
        _ensure_region_allowed(principal, changes["region_code"])
    before = event_service.snapshot(enterprise)
    for key, value in changes.items():
        if value is None:
            continue
        setattr(enterprise, key, value)
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="enterprise.updated",
        entity=enterprise,
        region_code=enterprise.region_code,
        before=before,
    )
    return enterprise
