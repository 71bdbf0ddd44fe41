from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from app.models.base import Base, IdMixin, IdType, TimestampMixin, VersionMixin, str_enum
from app.models.enums import Role

if TYPE_CHECKING:
    from app.models.enterprise import Enterprise
    from app.models.provider import Provider


class User(IdMixin, TimestampMixin, VersionMixin, Base):
    """A person who logs in. Enterprise and provider users are bound to exactly one entity.

    ``token_version`` is written into every bearer token; a password change or a
    deactivation bumps it, so tokens issued before stop working at once.
    """

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(str_enum(Role, 20))
    region_prefixes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    enterprise_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    provider_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("providers.id", ondelete="CASCADE"), index=True
    )
    is_active: Mapped[bool] = mapped_column(default=True)
    # Notices are worded in ``language`` and sent on each of ``notify_channels``.
    language: Mapped[str] = mapped_column(String(8), default="zh")
    notify_channels: Mapped[list[Any]] = mapped_column(JSON, default=lambda: ["log"])
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    enterprise: Mapped[Enterprise | None] = relationship(lazy="raise")
    provider: Mapped[Provider | None] = relationship(lazy="raise")


def user_of_console_session(db: Session, cookie: Mapping[str, Any]) -> User | None:
    """The active user a console session cookie still speaks for, or None.

    The cookie carries the ``token_version`` of its log-in, so a password change or a
    deactivation ends console sessions exactly as it ends bearer tokens (the cookie is signed,
    but it lives for hours and would otherwise outlast the password it was issued for).
    The console pages and the API's cookie-authenticated reads both ask here.
    """
    user_id, version = cookie.get("uid"), cookie.get("ver")
    if not isinstance(user_id, int) or not isinstance(version, int):
        return None
    user = db.get(User, user_id)
    if user is None or not user.is_active or user.token_version != version:
        return None
    return user


class ApiKey(IdMixin, Base):
    """An integration credential, stored as a keyed SHA-256 digest (HMAC with the secret key).

    The key is a 256-bit random secret, so a fast keyed digest is as safe as a slow password
    hash and costs microseconds per request instead of argon2's ~260 ms. ``key_digest`` is
    NULL only for keys issued before digests (revoked by the migration; re-issue them).
    """

    __tablename__ = "api_keys"

    user_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()

    user: Mapped[User] = relationship(lazy="raise")
