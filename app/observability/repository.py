"""The counts behind the scrape-time gauges: one grouped query each, on indexed columns."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import (
    Assignment,
    AssignmentStatus,
    HelpRequest,
    MatchRun,
    MatchRunStatus,
    Notification,
    NotificationStatus,
    Plan,
    WebhookDelivery,
    WebhookDeliveryStatus,
)

OPEN_ASSIGNMENTS = (
    AssignmentStatus.PROPOSED,
    AssignmentStatus.OFFERED,
    AssignmentStatus.ACCEPTED,
    AssignmentStatus.ACTIVE,
)


def runs_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(MatchRun.status, func.count()).group_by(MatchRun.status))
    counts = {status.value: 0 for status in MatchRunStatus}
    counts.update({str(status): int(n) for status, n in rows})
    return counts


def outbox_by_channel(session: Session, status: NotificationStatus) -> dict[str, int]:
    rows = session.execute(
        select(Notification.channel, func.count())
        .where(Notification.status == status)
        .group_by(Notification.channel)
    )
    return {str(channel): int(n) for channel, n in rows}


def webhook_deliveries(session: Session, status: WebhookDeliveryStatus) -> int:
    statement = select(func.count()).where(WebhookDelivery.status == status)
    return int(session.scalar(statement.select_from(WebhookDelivery)) or 0)


def open_assignments_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Assignment.status, func.count())
        .where(Assignment.status.in_(OPEN_ASSIGNMENTS))
        .group_by(Assignment.status)
    )
    counts = {status.value: 0 for status in OPEN_ASSIGNMENTS}
    counts.update({str(status): int(n) for status, n in rows})
    return counts


def plans_awaiting_preparation(session: Session) -> int:
    """Plans a large publish left to the worker (a partial index holds exactly these)."""
    statement = select(func.count()).where(Plan.preparation_run_id.is_not(None))
    return int(session.scalar(statement.select_from(Plan)) or 0)


def requests_awaiting_rematch(session: Session) -> int:
    """Requests a decline left to the worker's re-match (a partial index holds exactly these)."""
    statement = select(func.count()).where(HelpRequest.rematch_requested_at.is_not(None))
    return int(session.scalar(statement.select_from(HelpRequest)) or 0)
