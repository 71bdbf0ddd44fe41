"""The counts behind the scrape-time gauges: one grouped query each, on indexed columns."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.common.clock import as_utc
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


BACKGROUND_QUEUES = ("rematch", "runs", "plans")


def oldest_waiting(session: Session) -> dict[str, datetime | None]:
    """Since when the oldest item of each queue only a worker empties has waited: a re-match
    (a partial index holds the marks), a queued run, a plan left to prepare. ``None``: empty."""
    # A run handed back (lease lost, worker stopped) waits since its lease ran out.
    since = func.coalesce(MatchRun.lease_expires_at, MatchRun.created_at)
    runs = select(func.min(since)).where(MatchRun.status == MatchRunStatus.QUEUED)
    plans = (
        select(func.min(MatchRun.published_at))
        .select_from(Plan)
        .join(MatchRun, MatchRun.id == Plan.preparation_run_id)
        .where(Plan.preparation_run_id.is_not(None))
    )
    rematch = select(func.min(HelpRequest.rematch_requested_at)).where(
        HelpRequest.rematch_requested_at.is_not(None)
    )
    moments = session.execute(
        select(rematch.scalar_subquery(), runs.scalar_subquery(), plans.scalar_subquery())
    ).one()
    return {
        queue: None if moment is None else as_utc(moment)
        for queue, moment in zip(BACKGROUND_QUEUES, moments, strict=True)
    }
