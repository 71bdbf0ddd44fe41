from __future__ import annotations

from datetime import date, datetime

from app.common.schemas import Page, Schema


class OverdueRead(Schema):
    kind: str
    request_id: int
    enterprise_id: int
    region_code: str
    category: str
    due_at: datetime
    due_date: date  # local date (service time zone) the clock ran out
    overdue_hours: float
    level: int
    assignment_id: int | None
    provider_id: int | None


class PausedWorkRead(Schema):
    """Accepted or active work of a provider paused today (it keeps its slot; check on it)."""

    assignment_id: int
    request_id: int
    provider_id: int
    status: str
    region_code: str
    paused_until_date: date | None


class BoardRead(Schema):
    """The supervision list (督办): what is late, work of paused providers, and how old the
    open backlog is. Each list is the first page (``total`` counts them all); page on through
    ``GET /supervision/overdue/{list}`` and ``GET /supervision/paused-work``."""

    overdue_offers: Page[OverdueRead]
    overdue_follow_ups: Page[OverdueRead]
    overdue_requests: Page[OverdueRead]
    paused_work: Page[PausedWorkRead]
    ageing: dict[str, int]
    generated_at: datetime


class SweepRead(Schema):
    """What one sweep did, and how: in ``transactions`` short batches, no write transaction
    longer than ``longest_transaction_seconds`` (the engine's re-match reads run apart)."""

    expired_offers: int
    released_offers: int
    rematched_offers: int
    overdue: dict[str, int]
    notifications: int
    transactions: int
    longest_transaction_seconds: float
    seconds: float


class NotificationRead(Schema):
    id: int
    recipient_user_id: int | None
    channel: str
    kind: str
    subject: str
    body: str
    payload: dict[str, object]
    region_code: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
