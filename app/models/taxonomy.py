from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, VersionMixin, str_enum
from app.models.enums import Severity


class Category(VersionMixin, Base):
    """A help category of the taxonomy; admins extend it, requests and skills refer to its key."""

    __tablename__ = "categories"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(50))
    name_en: Mapped[str] = mapped_column(String(80))
    default_severity: Mapped[Severity] = mapped_column(
        str_enum(Severity, 10), default=Severity.ORDINARY
    )
    # The "13710" clocks: routed within 1 day, first feedback within 3, ordinary problems
    # solved within 7 days and major ones within 30. Admins tune them per category.
    route_days: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    first_feedback_days: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    resolve_days_ordinary: Mapped[int] = mapped_column(Integer, default=7, server_default="7")
    resolve_days_major: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
