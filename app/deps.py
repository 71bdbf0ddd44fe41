"""Typed dependencies every router uses: the request's session and who is asking.

The session dependency is function-scoped so its commit runs after the endpoint returns and
*before* the response is sent (FastAPI >= 0.121); a failed commit is an error response, not
a silent loss after a 200.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.auth.security import decode_access_token, split_api_key, verify_secret
from app.common.clock import utc_now
from app.errors import Forbidden, Unauthorized
from app.models import ApiKey, Role, User
from app.settings import Settings

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_db(request: Request) -> Iterator[Session]:
    """One transaction per request: commit when the endpoint returns, roll back if it raises."""
    factories = request.app.state.session_factories
    factory = factories["read"] if request.method in READ_METHODS else factories["write"]
    with factory() as session, session.begin():
        yield session


DbSession = Annotated[Session, Depends(get_db, scope="function")]


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with (``create_app(settings)``), not the environment's.

    Pure dependencies are ``async``: FastAPI runs a sync one on a worker thread, and each such
    hop costs a thread hand-off on every request for no blocking work at all.
    """
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def _user_from_api_key(session: Session, key: str) -> User | None:
    prefix = split_api_key(key)
    if prefix is None:
        return None
    api_key = session.scalar(
        select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
    )
    if api_key is None or not verify_secret(key, api_key.key_hash):
        return None
    api_key.last_used_at = utc_now()
    return session.get(User, api_key.user_id)


def _console_user(request: Request, session: Session) -> User | None:
    """The web console's signed session cookie, for reads only.

    A download button in the console (CSV/XLSX exports) is a plain link and cannot carry a
    bearer token. Writes still need a token or a key, so a form on another site can never act
    through the cookie (and the cookie is SameSite=Lax besides).
    """
    if request.method not in READ_METHODS:
        return None
    user_id = (request.scope.get("session") or {}).get("uid")
    return session.get(User, user_id) if isinstance(user_id, int) else None


def get_principal(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    user: User | None = None
    if token:
        user_id = decode_access_token(token, secret_key=settings.secret_key)
        user = session.get(User, user_id) if user_id is not None else None
    elif api_key:
        user = _user_from_api_key(session, api_key)
    else:
        user = _console_user(request, session)
    if user is None or not user.is_active:
        raise Unauthorized("a valid bearer token or X-API-Key is required")
    return Principal.of(user)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency admitting only the given roles: others get 403 (they are known, not allowed)."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"this action is for {allowed}; you are {principal.role.value}")
        return principal

    return check


Staff = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.ADMIN))]
AdminOnly = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
