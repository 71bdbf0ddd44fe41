from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, Field

from app.common.concurrency import IfMatch, check_if_match, set_etag
from app.common.pagination import PageInQuery, PageQuery
from app.common.schemas import Page, StaffDecision, problem_responses
from app.common.types import PathId, RegionPrefix
from app.deps import CurrentPrincipal, DbSession, IdempotencyDep, OneHopRoute, SettingsDep, Staff
from app.models import Provider, ProviderKind, Vetting
from app.providers import repository
from app.providers import service as provider_service
from app.providers import vetting as vetting_service
from app.providers.schemas import (
    ConflictCreate,
    ConflictRead,
    ProviderCreate,
    ProviderRead,
    ProviderUpdate,
    ProviderView,
    provider_view,
)

router = APIRouter(route_class=OneHopRoute, prefix="/providers", tags=["providers"])


def get_provider(provider_id: PathId, session: DbSession, principal: CurrentPrincipal) -> Provider:
    return provider_service.get(session, principal=principal, provider_id=provider_id)


CurrentProvider = Annotated[Provider, Depends(get_provider)]


class ProviderQuery(BaseModel):
    """The list's filters, as one query model (validated once per request)."""

    kind: ProviderKind | None = None
    active: bool | None = None
    home_region: RegionPrefix | None = None
    q: Annotated[str | None, Field(max_length=100)] = None
    vetting: Vetting | None = None

    def filter(self) -> repository.ProviderFilter:
        return repository.ProviderFilter(
            kind=self.kind,
            active=self.active,
            home_region=self.home_region,
            q=self.q,
            vetting=self.vetting,
        )


class ProviderListQuery(ProviderQuery, PageQuery):
    """A page of the list: ``limit`` and ``cursor`` first, then the filters."""


async def provider_filter(query: Annotated[ProviderQuery, Query()]) -> repository.ProviderFilter:
    """The list's filters, for the export of the same list."""
    return query.filter()


@router.get("", response_model=Page[ProviderView], responses=problem_responses(401))
def list_providers(
    session: DbSession,
    principal: CurrentPrincipal,
    query: Annotated[ProviderListQuery, Query()],
    request: Request,
) -> Page[ProviderView]:
    page = query.page(request)
    return provider_service.list_(session, principal=principal, filters=query.filter(), page=page)


@router.post(
    "",
    response_model=ProviderRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409),
)
def create_provider(
    data: ProviderCreate,
    session: DbSession,
    principal: Staff,
    idem: IdempotencyDep,
    settings: SettingsDep,
) -> object:
    if (replayed := idem.replay(data)) is not None:
        return replayed
    provider = provider_service.create(
        session,
        principal=principal,
        data=data,
        capacity_ceiling=settings.capacity_ceiling(data.kind.value),
    )
    return idem.store(data, ProviderRead.model_validate(provider))


@router.get("/{provider_id}", response_model=ProviderView, responses=problem_responses(401, 404))
def read_provider(
    provider_id: PathId, session: DbSession, principal: CurrentPrincipal, response: Response
) -> ProviderView:
    """An enterprise the provider serves reads its card; staff and the provider the record."""
    # Loaded here, not through ``CurrentProvider``: a synchronous dependency is a worker-thread
    # hop of its own, and a read needs only the endpoint's (``OneHopRoute``).
    provider = provider_service.get(session, principal=principal, provider_id=provider_id)
    set_etag(response, provider.version)
    return provider_view(principal, provider)


@router.patch(
    "/{provider_id}",
    response_model=ProviderRead,
    responses=problem_responses(401, 403, 404, 409, 412, 428),
)
def update_provider(
    data: ProviderUpdate,
    provider: CurrentProvider,
    session: DbSession,
    principal: CurrentPrincipal,
    response: Response,
    settings: SettingsDep,
    if_match: IfMatch = None,
) -> Provider:
    check_if_match(if_match, provider.version)
    updated = provider_service.update(
        session,
        principal=principal,
        provider=provider,
        data=data,
        capacity_ceiling=settings.capacity_ceiling(provider.kind.value),
    )
    set_etag(response, updated.version)
    return updated


@router.post(
    "/{provider_id}/vetting",
    response_model=ProviderRead,
    responses=problem_responses(401, 403, 404, 409),
)
def vet_provider(
    data: StaffDecision, provider: CurrentProvider, session: DbSession, principal: Staff
) -> Provider:
    """Approve or reject a self-registered provider (coordinators of its home region, admins);
    only approved providers are ever matched or offered work."""
    return vetting_service.decide(session, principal=principal, provider=provider, data=data)


@router.get(
    "/{provider_id}/conflicts",
    response_model=Page[ConflictRead],
    responses=problem_responses(401, 403, 404),
)
def list_conflicts(
    provider: CurrentProvider,
    session: DbSession,
    principal: CurrentPrincipal,
    page_query: PageInQuery,
    request: Request,
) -> Page[ConflictRead]:
    """The enterprises this provider must never serve, paged with the total."""
    page = page_query.page(request)
    return provider_service.list_conflicts(
        session, principal=principal, provider=provider, page=page
    )


@router.post(
    "/{provider_id}/conflicts",
    response_model=ConflictRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409),
)
def declare_conflict(
    data: ConflictCreate,
    provider: CurrentProvider,
    session: DbSession,
    principal: CurrentPrincipal,
    idem: IdempotencyDep,
) -> object:
    """Declare a conflict of interest with an enterprise (by USCC): never matched with it."""
    if (replayed := idem.replay(data)) is not None:
        return replayed
    conflict = provider_service.declare_conflict(
        session, principal=principal, provider=provider, data=data
    )
    return idem.store(data, ConflictRead.model_validate(conflict))


@router.delete(
    "/{provider_id}/conflicts/{enterprise_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
)
def withdraw_conflict(
    enterprise_id: PathId,
    provider: CurrentProvider,
    session: DbSession,
    principal: CurrentPrincipal,
) -> None:
    provider_service.withdraw_conflict(
        session, principal=principal, provider=provider, enterprise_id=enterprise_id
    )
