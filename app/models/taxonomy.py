from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, str_enum
from app.models.enums import Severity


class Category(Base):
    """A help category of the taxonomy; admins extend it, requests and skills refer to its key."""

    __tablename__ = "categories"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(50))
    name_en: Mapped[str] = mapped_column(String(80))
    default_severity: Mapped[Severity] = mapped_column(
        str_enum(Severity, 10), default=Severity.ORDINARY
    )
