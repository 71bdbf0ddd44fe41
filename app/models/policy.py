from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, TimestampMixin, VersionMixin


class Policy(IdMixin, TimestampMixin, VersionMixin, Base):
    """An entry of the support-policy catalogue; empty eligibility lists mean "any"."""

    __tablename__ = "policies"

    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    issuer: Mapped[str] = mapped_column(String(200), default="")
    url: Mapped[str] = mapped_column(String(500), default="")
    tiers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    sizes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    industry_prefixes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    region_prefixes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    valid_from_date: Mapped[date | None] = mapped_column()
    valid_until_date: Mapped[date | None] = mapped_column()
