from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, TimestampMixin, VersionMixin, str_enum
from app.models.enums import EnterpriseSize, Tier


class Enterprise(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "enterprises"

    name: Mapped[str] = mapped_column(String(200), index=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    industry_code: Mapped[str] = mapped_column(String(5), index=True)
    size: Mapped[EnterpriseSize] = mapped_column(str_enum(EnterpriseSize, 10))
    tier: Mapped[Tier] = mapped_column(str_enum(Tier, 20), index=True)
    headcount: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    contact_phone: Mapped[str] = mapped_column(String(30), default="")
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    # ``tier`` is the verified tier (policy eligibility and priority use it); a tier the
    # enterprise claims waits in ``claimed_tier`` until a coordinator verifies or rejects it.
    claimed_tier: Mapped[Tier | None] = mapped_column(str_enum(Tier, 20))
    tier_reason: Mapped[str] = mapped_column(String(500), default="", server_default="")
    tier_verified_at: Mapped[datetime | None] = mapped_column()
