from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, TimestampMixin, VersionMixin


class GlossaryEntry(IdMixin, TimestampMixin, VersionMixin, Base):
    """An admin's addition to the bilingual glossary: Chinese and English terms of a concept.

    The shipped glossary (``matching/scoring/data/glossary.json``) stays as it is; an entry
    whose ``concept`` names a shipped concept adds terms to it, any other starts a new one.
    Every match run hands the engine the shipped glossary plus these entries.
    """

    __tablename__ = "glossary_entries"

    concept: Mapped[str] = mapped_column(String(60), unique=True)
    zh: Mapped[list[Any]] = mapped_column(JSON, default=list)
    en: Mapped[list[Any]] = mapped_column(JSON, default=list)
