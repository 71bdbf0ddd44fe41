"""Log-in, self-registration, staff accounts and API keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from app.auth.passwords import password_problem
from app.auth.schemas import (
    ApiKeyRead,
    EnterpriseRegistration,
    ProviderRegistration,
    StaffCreate,
    UserRead,
    UserUpdate,
)
from app.common.clock import utc_now
from app.common.credentials import (
    api_key_digest,
    create_access_token,
    hash_secret,
    new_api_key,
    verify_secret,
)
from app.common.pagination import PageParams, field_columns, paginate
from app.common.principal import Principal
from app.common.schemas import Page
from app.db import SessionScopes, rows_matched
from app.enterprises import service as enterprise_service
from app.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from app.events import service as event_service
from app.models import ApiKey, Role, User
from app.providers import service as provider_service
from app.settings import Settings


def authenticate(
    scopes: SessionScopes, *, email: str, password: str, settings: Settings
) -> tuple[str, datetime]:
    """Read the user in a short read transaction, then verify (~260 ms) with none open."""
    with scopes.read() as session:
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if not verify_secret(password, user.password_hash if user else None) or user is None:
        raise Unauthorized("wrong e-mail or password")
    if not user.is_active:
        raise Unauthorized("this account is deactivated")
    return create_access_token(
        user.id,
        token_version=user.token_version,
        secret_key=settings.secret_key,
        minutes=settings.access_token_minutes,
    )


def _ensure_email_free(session: Session, email: str) -> None:
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"{email} is already registered", field="email")


def _new_user(
    session: Session, *, email: str, password_hash: str, full_name: str, role: Role, **links: object
) -> User:
    _ensure_email_free(session, email)
    user = User(
        email=email,
        password_hash=password_hash,
        full_name=full_name,
        role=role,
        region_prefixes=[],
        **links,
    )
    session.add(user)
    session.flush()
    return user


def _user_snapshot(user: User) -> dict[str, object]:
    """A user as the audit log keeps it: never its password hash."""
    after = event_service.snapshot(user)
    after.pop("password_hash", None)
    return after


def _record_registration(session: Session, user: User, region_code: str) -> User:
    event_service.record(
        session,
        actor=None,
        action="user.registered",
        entity=user,
        region_code=region_code,
        after=_user_snapshot(user),
    )
    return user


def register_enterprise(session: Session, *, data: EnterpriseRegistration) -> User:
    """An enterprise signs itself up: its company and its first user, in one transaction.

    The password is hashed before the session is first used, so the (lazily begun) write
    transaction does not wrap the ~260 ms of argon2.
    """
    password_hash = hash_secret(data.password)
    _ensure_email_free(session, data.email)
    enterprise = enterprise_service.create(session, principal=None, data=data.enterprise)
    user = _new_user(
        session,
        email=data.email,
        password_hash=password_hash,
        full_name=data.full_name,
        role=Role.ENTERPRISE,
        enterprise_id=enterprise.id,
    )
    return _record_registration(session, user, enterprise.region_code)


def register_provider(
    session: Session, *, data: ProviderRegistration, capacity_ceiling: int
) -> User:
    password_hash = hash_secret(data.password)  # before the transaction (register_enterprise)
    _ensure_email_free(session, data.email)
    provider = provider_service.create(
        session, principal=None, data=data.provider, capacity_ceiling=capacity_ceiling
    )
    role = Role.EXPERT if data.provider.kind == "expert" else Role.PLATFORM
    user = _new_user(
        session,
        email=data.email,
        password_hash=password_hash,
        full_name=data.full_name,
        role=role,
        provider_id=provider.id,
    )
    return _record_registration(session, user, provider.home_region_code or "")


def create_staff(session: Session, *, principal: Principal | None, data: StaffCreate) -> User:
    """Admins create coordinators and admins; ``principal`` is None only for the CLI bootstrap.

    Hashing comes first, before the session is used (see ``register_enterprise``)."""
    password_hash = hash_secret(data.password)
    user = _new_user(
        session,
        email=data.email,
        password_hash=password_hash,
        full_name=data.full_name,
        role=data.role,
    )
    user.region_prefixes = list(data.region_prefixes)
    session.flush()
    event_service.record(
        session, actor=principal, action="user.created", entity=user, after=_user_snapshot(user)
    )
    return user


def list_users(session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(User.id)).all()


def page_users(session: Session, *, page: PageParams, role: Role | None = None) -> Page[UserRead]:
    statement = select(User)
    if role is not None:
        statement = statement.where(User.role == role)
    return paginate(session, statement, User.id, page, UserRead.model_validate, count=True)


# Built once: building a statement and its cache key cost more CPU than running it.
_READ_USER = select(*field_columns(UserRead, User)).where(User.id == bindparam("user_id"))


def read_user(session: Session, user_id: int) -> UserRead:
    """The account as its read schema, from one row of the schema's columns: an ORM entity,
    loaded only to be validated into the response, cost more CPU than the row (and its
    whole row, JSON columns and password hash included, was read and decoded for it). Run on
    the session's connection: plain columns need nothing of the ORM's execution."""
    row = session.connection().execute(_READ_USER, {"user_id": user_id}).one_or_none()
    if row is None:
        raise NotFound(f"user {user_id} not found")
    return UserRead.model_validate(row)


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def update_user(session: Session, *, principal: Principal, user: User, data: UserUpdate) -> User:
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "region_prefixes" in changes and user.role != Role.COORDINATOR:
        raise Conflict("only coordinators have regions", field="region_prefixes")
    if changes.get("is_active") is False and user.id == principal.user_id:
        raise Forbidden("you cannot deactivate yourself", field="is_active")
    before = _user_snapshot(user)
    if changes.get("is_active") is False and user.is_active:
        user.token_version += 1  # the deactivated user's tokens die now, not at expiry
    for key, value in changes.items():
        setattr(user, key, value)
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action="user.updated",
        entity=user,
        before=before,
        after=_user_snapshot(user),
    )
    return user


def change_password(
    session: Session, scopes: SessionScopes, *, principal: Principal, current: str, new: str
) -> None:
    """Verify and hash (2 × argon2) with no transaction open, then one compare-and-set write.

    Bumping ``token_version`` logs out every bearer token issued before, this caller's too.
    """
    with scopes.read() as reading:
        user = get_user(reading, principal.user_id)
    if not verify_secret(current, user.password_hash):
        raise Forbidden("the current password is wrong", field="current_password")
    problem = password_problem(new, email=user.email)
    if problem:
        raise InvalidInput(f"new_password: {problem}", field="new_password")
    new_hash = hash_secret(new)
    changed = rows_matched(
        session,
        update(User)
        .where(User.id == user.id, User.password_hash == user.password_hash)
        .values(
            password_hash=new_hash,
            token_version=User.token_version + 1,
            version=User.version + 1,
            updated_at=utc_now(),
        )
        .execution_options(synchronize_session=False),
    )
    if changed != 1:
        raise Conflict("the password was changed meanwhile; log in again", field="current_password")
    event_service.record(
        session,
        actor=principal,
        action="user.password_changed",
        entity=user,
        after={"password_changed_by": "self"},
    )


def create_api_key(
    session: Session, *, principal: Principal, name: str, secret_key: str
) -> tuple[ApiKey, str]:
    """Keys are stored as a keyed digest; a key cannot mint keys (they would outlive it)."""
    if principal.via_api_key:
        raise Forbidden("an API key cannot create API keys; log in with your password")
    key, prefix = new_api_key()
    api_key = ApiKey(
        user_id=principal.user_id,
        name=name,
        prefix=prefix,
        key_digest=api_key_digest(key, secret_key=secret_key),
        created_at=utc_now(),
    )
    session.add(api_key)
    session.flush()
    event_service.record(
        session, actor=principal, action="api_key.created", entity=api_key, after=_key(api_key)
    )
    return api_key, key


def _key(api_key: ApiKey) -> dict[str, object]:
    """An API key as the audit log keeps it: never its digest."""
    after = event_service.snapshot(api_key)
    after.pop("key_digest", None)
    return after


def list_api_keys(session: Session, *, principal: Principal) -> Sequence[ApiKey]:
    return session.scalars(
        select(ApiKey).where(ApiKey.user_id == principal.user_id).order_by(ApiKey.id)
    ).all()


def page_api_keys(session: Session, *, principal: Principal, page: PageParams) -> Page[ApiKeyRead]:
    statement = select(ApiKey).where(ApiKey.user_id == principal.user_id)
    return paginate(session, statement, ApiKey.id, page, ApiKeyRead.model_validate, count=True)


def revoke_api_key(session: Session, *, principal: Principal, key_id: int) -> None:
    api_key = session.get(ApiKey, key_id)
    if api_key is None or api_key.user_id != principal.user_id:
        raise NotFound(f"API key {key_id} not found")
    if api_key.revoked_at is None:  # revoking a revoked key changes nothing: no event
        before = _key(api_key)
        api_key.revoked_at = utc_now()
        session.flush()
        event_service.record(
            session,
            actor=principal,
            action="api_key.revoked",
            entity=api_key,
            before=before,
            after=_key(api_key),
        )
