from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, IdMixin, IdType, TimestampMixin, str_enum
from app.models.enums import Role

if TYPE_CHECKING:
    from app.models.enterprise import Enterprise
    from app.models.provider import Provider


class User(IdMixin, TimestampMixin, Base):
    """A person who logs in. Enterprise and provider users are bound to exactly one entity."""

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

    enterprise: Mapped[Enterprise | None] = relationship(lazy="raise")
    provider: Mapped[Provider | None] = relationship(lazy="raise")


class ApiKey(IdMixin, Base):
    """An integration credential; only the argon2 hash of the secret part is stored."""

    __tablename__ = "api_keys"

    user_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()

    user: Mapped[User] = relationship(lazy="raise")
