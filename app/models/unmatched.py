from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdType


class UnmatchedReason(Base):
    """Why a request was left without a provider, by the latest run and the latest re-match.

    One row per request and source (``run`` or ``rematch``), replaced each time that source
    decides the request again and deleted when it finds a provider, so a request's page
    shows the structured reason (rule, counts, the requests that took the capacity)
    without searching run statistics or the audit trail.
    """

    __tablename__ = "unmatched_reasons"

    request_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("help_requests.id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(10), primary_key=True)
    match_run_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("match_runs.id", ondelete="SET NULL"), index=True
    )
    reason: Mapped[str] = mapped_column(String(20))
    removed: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    taken_by: Mapped[list[Any]] = mapped_column(JSON, default=list)
    message_zh: Mapped[str] = mapped_column(Text, default="")
    message_en: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime] = mapped_column()  # set by whoever decides
