from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, IdType, TimestampMixin, VersionMixin, str_enum
from app.models.enums import ProviderKind, Vetting


class Provider(IdMixin, TimestampMixin, VersionMixin, Base):
    """A volunteer expert or a service platform, with what it can do and how much it can take.

    ``skills`` maps a category key to a level 1–3; ``industries`` and ``regions`` are code
    prefixes (empty ``regions`` means anywhere).
    """

    __tablename__ = "providers"
    __table_args__ = (
        CheckConstraint("capacity >= 0", name="capacity_non_negative"),
        CheckConstraint("rating IS NULL OR (rating >= 0 AND rating <= 5)", name="rating_range"),
    )

    kind: Mapped[ProviderKind] = mapped_column(str_enum(ProviderKind, 10))
    name: Mapped[str] = mapped_column(String(200), index=True)
    organisation: Mapped[str] = mapped_column(String(200), default="")
    expertise: Mapped[str] = mapped_column(Text, default="")
    skills: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    industries: Mapped[list[Any]] = mapped_column(JSON, default=list)
    regions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    home_region_code: Mapped[str | None] = mapped_column(String(6), index=True)
    remote_ok: Mapped[bool] = mapped_column(default=False)
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(default=True)
    paused_from_date: Mapped[date | None] = mapped_column()
    paused_until_date: Mapped[date | None] = mapped_column()
    rating: Mapped[float | None] = mapped_column(Float)
    rating_count: Mapped[int] = mapped_column(Integer, default=0)
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    contact_phone: Mapped[str] = mapped_column(String(30), default="")
    # Staff-created and seeded providers are vetted by whoever created them; self-registration
    # sets ``pending`` explicitly. Only ``approved`` providers are ever matched or offered.
    vetting: Mapped[Vetting] = mapped_column(
        str_enum(Vetting, 10), default=Vetting.APPROVED, server_default="approved", index=True
    )
    vetting_reason: Mapped[str] = mapped_column(String(500), default="", server_default="")
    vetted_at: Mapped[datetime | None] = mapped_column()


class ProviderConflict(Base):
    """A declared conflict of interest: the provider must never serve this enterprise."""

    __tablename__ = "provider_conflicts"

    provider_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    enterprise_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("enterprises.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column()
