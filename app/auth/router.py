from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status

from app.auth import service as auth_service
from app.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    EnterpriseRegistration,
    LogInForm,
    PasswordChange,
    ProviderRegistration,
    StaffCreate,
    Token,
    UserRead,
    UserUpdate,
)
from app.common.concurrency import IfMatch, check_if_match, set_etag
from app.common.pagination import PageDep, PageInQuery
from app.common.schemas import Page, problem_responses
from app.common.types import PathId
from app.deps import (
    AdminApart,
    AdminOnly,
    CurrentPrincipal,
    DbSession,
    IdempotencyApart,
    OneHopRoute,
    PrincipalApart,
    Scopes,
    SettingsDep,
    Throttle,
    client_address,
)
from app.models import Role, User

router = APIRouter(route_class=OneHopRoute, tags=["auth"])


@router.post("/auth/token", response_model=Token, responses=problem_responses(401, 429))
def log_in(
    form: Annotated[LogInForm, Form()],
    request: Request,
    scopes: Scopes,
    settings: SettingsDep,
    throttle: Throttle,
) -> Token:
    """Exchange e-mail (as ``username``) and password for a short-lived bearer token.

    Throttled per client address and per account (429 with ``Retry-After``); a password
    change or a deactivation ends every token issued before it.
    """
    throttle.check("log-in", address=client_address(request), account=form.username)
    token, expires = auth_service.authenticate(
        scopes, email=form.username, password=form.password, settings=settings
    )
    return Token(access_token=token, expires_at=expires)


@router.post(
    "/auth/register/enterprise",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409, 429),
)
def register_enterprise(
    data: EnterpriseRegistration, request: Request, session: DbSession, throttle: Throttle
) -> User:
    """An enterprise signs itself up with its company details; no log-in needed."""
    throttle.check("sign-up", address=client_address(request))
    return auth_service.register_enterprise(session, data=data)


@router.post(
    "/auth/register/provider",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 409, 429),
)
def register_provider(
    data: ProviderRegistration,
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    throttle: Throttle,
) -> User:
    """An expert or a service platform signs itself up with its profile. It starts
    ``pending``: a coordinator of its home region vets it before it is matched."""
    throttle.check("sign-up", address=client_address(request))
    return auth_service.register_provider(
        session, data=data, capacity_ceiling=settings.capacity_ceiling(data.provider.kind.value)
    )


@router.get("/users/me", response_model=UserRead, responses=problem_responses(401))
def read_me(session: DbSession, principal: CurrentPrincipal) -> UserRead:
    return auth_service.read_user(session, principal.user_id)


@router.post(
    "/users/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 409),
)
def change_password(
    data: PasswordChange, session: DbSession, scopes: Scopes, principal: PrincipalApart
) -> None:
    """Every token issued before (this one included) stops working: log in again."""
    auth_service.change_password(
        session, scopes, principal=principal, current=data.current_password, new=data.new_password
    )


@router.get("/users", response_model=Page[UserRead], responses=problem_responses(401, 403))
def list_users(
    session: DbSession, _admin: AdminOnly, page: PageDep, role: Role | None = None
) -> Page[UserRead]:
    """Every account (admins), optionally of one role; paged with the total."""
    return auth_service.page_users(session, page=page, role=role)


@router.post(
    "/users",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409),
)
def create_staff(
    data: StaffCreate, session: DbSession, admin: AdminApart, idem: IdempotencyApart
) -> object:
    """Create a coordinator (with region prefixes) or another admin."""
    if (replayed := idem.replay(data)) is not None:
        return replayed
    user = auth_service.create_staff(session, principal=admin, data=data)
    return idem.store(data, UserRead.model_validate(user))


@router.patch(
    "/users/{user_id}",
    response_model=UserRead,
    responses=problem_responses(401, 403, 404, 409, 412, 428),
)
def update_user(
    user_id: PathId,
    data: UserUpdate,
    session: DbSession,
    admin: AdminOnly,
    response: Response,
    if_match: IfMatch = None,
) -> User:
    user = auth_service.get_user(session, user_id)
    check_if_match(if_match, user.version)
    updated = auth_service.update_user(session, principal=admin, user=user, data=data)
    set_etag(response, updated.version)
    return updated


@router.get("/api-keys", response_model=Page[ApiKeyRead], responses=problem_responses(401))
def list_api_keys(
    session: DbSession, principal: CurrentPrincipal, page_query: PageInQuery, request: Request
) -> Page[ApiKeyRead]:
    """Your keys (revoked ones too), paged with the total."""
    page = page_query.page(request)
    return auth_service.page_api_keys(session, principal=principal, page=page)


@router.post(
    "/api-keys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403),
)
def create_api_key(
    data: ApiKeyCreate, session: DbSession, principal: CurrentPrincipal, settings: SettingsDep
) -> ApiKeyCreated:
    """A key for an integration acting as you; send it as ``X-API-Key``. Shown once.

    Only a logged-in user mints keys: a key cannot create keys (403)."""
    api_key, key = auth_service.create_api_key(
        session, principal=principal, name=data.name, secret_key=settings.secret_key
    )
    return ApiKeyCreated(**ApiKeyRead.model_validate(api_key).model_dump(), key=key)


@router.delete(
    "/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 404),
)
def revoke_api_key(key_id: PathId, session: DbSession, principal: CurrentPrincipal) -> None:
    auth_service.revoke_api_key(session, principal=principal, key_id=key_id)
