"""Use cases on the provider registry. Services flush, never commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.assignments import offers, rematch_queue
from app.common.clock import today, utc_now
from app.common.pagination import PageParams, paginate, paginate_shaped, schema_columns
from app.common.principal import Principal
from app.common.schemas import Page
from app.common.shapes import Param
from app.errors import Conflict, Forbidden, NotFound
from app.events import service as event_service
from app.models import Enterprise, Provider, ProviderConflict, Vetting
from app.providers import repository
from app.providers.schemas import (
    ConflictCreate,
    ConflictRead,
    ProviderCreate,
    ProviderUpdate,
    ProviderView,
    provider_view_model,
)
from app.supervision import service as supervision_service
from app.taxonomy import service as taxonomy_service


def get(session: Session, *, principal: Principal, provider_id: int) -> Provider:
    provider = session.scalar(repository.visible_to(principal).where(Provider.id == provider_id))
    if provider is None:
        raise NotFound(f"provider {provider_id} not found")
    return provider


def list_(
    session: Session, *, principal: Principal, filters: repository.ProviderFilter, page: PageParams
) -> Page[ProviderView]:
    def build(param: Param) -> Select[Any]:
        return repository.filtered(repository.visible_to(principal, param), filters, param)

    view = provider_view_model(principal)
    columns = schema_columns(view, Provider)
    return paginate_shaped(
        session, principal, filters, build, Provider.id, page, view.model_validate, columns=columns
    )


def _ensure_capacity_allowed(capacity: int, ceiling: int) -> None:
    if capacity > ceiling:
        raise Forbidden(
            f"a capacity above {ceiling} is granted by a coordinator, not set by the provider",
            field="capacity",
        )


def _ensure_home_allowed(principal: Principal, home_region_code: str | None) -> None:
    """Staff home providers inside their own regions (only admins leave one unhomed)."""
    if principal.is_admin:
        return
    if not home_region_code or not principal.covers_region(home_region_code):
        raise Forbidden("home_region_code must be inside your regions", field="home_region_code")


def create(
    session: Session, *, principal: Principal | None, data: ProviderCreate, capacity_ceiling: int
) -> Provider:
    """Staff add (and so vet) providers; self-registration (no principal, through the auth
    domain) starts ``pending`` and within the self-service capacity ceiling."""
    taxonomy_service.ensure_known(session, data.skills, field="skills")
    if principal is None:
        _ensure_capacity_allowed(data.capacity, capacity_ceiling)
    else:
        _ensure_home_allowed(principal, data.home_region_code)
    provider = Provider(**data.model_dump())
    if principal is None:
        provider.vetting = Vetting.PENDING
    else:
        provider.vetting, provider.vetted_at = Vetting.APPROVED, utc_now()
    session.add(provider)
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="provider.created",
        entity=provider,
        region_code=provider.home_region_code or "",
    )
    return provider


def _may_manage(principal: Principal, provider: Provider) -> bool:
    """Staff manage providers based in their regions (admins: all; unhomed ones: admins)."""
    if principal.is_admin:
        return True
    return bool(provider.home_region_code) and principal.covers_region(
        provider.home_region_code or ""
    )


def _ensure_owned_fields(
    principal: Principal, provider: Provider, changes: dict[str, Any], ceiling: int, staff: bool
) -> None:
    """Fields that drive matching or scope are staff-owned (DOMAIN: vetting, issue 8 item 2)."""
    if not staff:
        if "active" in changes:
            raise Forbidden(
                "only coordinators and admins activate or deactivate providers", field="active"
            )
        if "home_region_code" in changes:
            raise Forbidden("only staff re-home a provider", field="home_region_code")
        capacity = changes.get("capacity")
        if capacity is not None and capacity > max(ceiling, provider.capacity):
            _ensure_capacity_allowed(capacity, ceiling)
    elif "home_region_code" in changes:
        _ensure_home_allowed(principal, changes["home_region_code"])


def update(
    session: Session,
    *,
    principal: Principal,
    provider: Provider,
    data: ProviderUpdate,
    capacity_ceiling: int,
) -> Provider:
    own = principal.is_provider and principal.provider_id == provider.id
    staff = _may_manage(principal, provider)
    if not (own or staff):
        raise Forbidden("only the provider itself or the coordinators of its region may edit it")
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    _ensure_owned_fields(principal, provider, changes, capacity_ceiling, staff)
    if changes.get("skills"):
        taxonomy_service.ensure_known(session, changes["skills"], field="skills")
    before = event_service.snapshot(provider)
    for key, value in changes.items():
        if value is not None or key in (
            "paused_from_date",
            "paused_until_date",
            "home_region_code",
        ):
            setattr(provider, key, value)
    session.flush()
    if {"active", "paused_from_date", "paused_until_date"} & changes.keys():
        _release_if_unavailable(session, principal, provider)
    event_service.record(
        session,
        actor=principal,
        action="provider.updated",
        entity=provider,
        region_code=provider.home_region_code or "",
        before=before,
    )
    return provider


def _release_if_unavailable(session: Session, principal: Principal, provider: Provider) -> None:
    """Pausing hands the provider's unanswered offers to someone else now (its accepted and
    active work stays, flagged on the supervision board); deactivating releases all of its
    open work; every released request is left to the worker's re-match (``rematch_queue``):
    a deactivation may release dozens, one engine run in the worker rather than in here."""
    released = supervision_service.release_offers_of_unavailable(
        session, today(), provider_id=provider.id
    )
    if not provider.active:
        released += offers.release_open_work(session, provider_id=provider.id, actor=principal)
    rematch_queue.mark(session, released)


def _ensure_may_declare(principal: Principal, provider: Provider) -> None:
    if not (
        (principal.is_provider and principal.provider_id == provider.id)
        or _may_manage(principal, provider)
    ):
        raise Forbidden("only the provider itself or its coordinators manage its conflicts")


def list_conflicts(
    session: Session, *, principal: Principal, provider: Provider, page: PageParams
) -> Page[ConflictRead]:
    """The provider's declared conflicts, by enterprise, paged with the total."""
    _ensure_may_declare(principal, provider)
    statement = repository.conflicts_of(provider.id).order_by(None)
    return paginate(
        session,
        statement,
        ProviderConflict.enterprise_id,
        page,
        ConflictRead.model_validate,
        count=True,
    )


def declare_conflict(
    session: Session, *, principal: Principal, provider: Provider, data: ConflictCreate
) -> ProviderConflict:
    """Conflicts are declared by USCC: a provider cannot see enterprises it does not serve."""
    _ensure_may_declare(principal, provider)
    enterprise = session.scalar(select(Enterprise).where(Enterprise.uscc == data.uscc))
    if enterprise is None:
        raise NotFound(f"no enterprise with USCC {data.uscc} is registered", field="uscc")
    if session.get(ProviderConflict, (provider.id, enterprise.id)) is not None:
        raise Conflict("this conflict is already declared", field="uscc")
    conflict = ProviderConflict(
        provider_id=provider.id,
        enterprise_id=enterprise.id,
        reason=data.reason,
        created_at=utc_now(),
    )
    session.add(conflict)
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="provider.conflict_declared",
        entity=conflict,
        region_code=enterprise.region_code,
    )
    return conflict


def withdraw_conflict(
    session: Session, *, principal: Principal, provider: Provider, enterprise_id: int
) -> None:
    _ensure_may_declare(principal, provider)
    conflict = session.get(ProviderConflict, (provider.id, enterprise_id))
    if conflict is None:
        raise NotFound("no such conflict")
    before = event_service.snapshot(conflict)
    session.delete(conflict)
    event_service.record(
        session,
        actor=principal,
        action="provider.conflict_withdrawn",
        entity=conflict,
        before=before,
        after={},
    )
