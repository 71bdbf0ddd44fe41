"""Delivery of the notification outbox. Email, SMS and WeChat senders plug in by channel;
the default sender writes a log line, so a fresh install needs no gateway."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.models import Notification, NotificationStatus
from app.notifications.email import SmtpSender
from app.notifications.webhook import WebhookChannel
from app.observability import metrics
from app.settings import Settings

logger = logging.getLogger("zhuqi.notifications")
MAX_ATTEMPTS = 5


class Sender(Protocol):
    def send(self, notification: Notification) -> None:
        """Deliver or raise; raising leaves the notification pending for a retry."""


class LogSender:
    """Writes each notification to the ``zhuqi.notifications`` log (DEBUG; a summary per
    delivery batch is logged at INFO so a busy sweep does not flood the console)."""

    def send(self, notification: Notification) -> None:
        logger.debug(
            "notify user=%s kind=%s subject=%s",
            notification.recipient_user_id,
            notification.kind,
            notification.subject,
        )


DEFAULT_SENDERS: Mapping[str, Sender] = {"log": LogSender(), "webhook": WebhookChannel()}


def senders_for(settings: Settings) -> Mapping[str, Sender]:
    """The log sender and users' own webhooks always; SMTP once a relay is configured
    (``ZHUQI_SMTP_*``)."""
    senders: dict[str, Sender] = dict(DEFAULT_SENDERS)
    if settings.smtp_host:
        senders["email"] = SmtpSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            timeout=settings.smtp_timeout_seconds,
        )
    return senders


def deliver_pending(
    session: Session, senders: Mapping[str, Sender] = DEFAULT_SENDERS, *, limit: int = 500
) -> tuple[int, int]:
    """Send what is pending; returns (sent, failed). At-least-once: a crash after sending and
    before the commit sends again, so receivers should tolerate duplicates (``dedupe_key``)."""
    pending = session.scalars(
        select(Notification)
        .where(Notification.status == NotificationStatus.PENDING)
        .order_by(Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    sent = failed = 0
    for notification in pending:
        sender = senders.get(notification.channel) or senders["log"]
        notification.attempts += 1
        try:
            sender.send(notification)
        except Exception as exc:  # a gateway error must not stop the others
            notification.last_error = str(exc)[:2000]
            dead = notification.attempts >= MAX_ATTEMPTS
            if dead:
                notification.status = NotificationStatus.FAILED
            metrics.observe_delivery(notification.channel, "dead" if dead else "failed")
            failed += 1
            continue
        metrics.observe_delivery(notification.channel, "sent")
        notification.status = NotificationStatus.SENT
        notification.sent_at = utc_now()
        sent += 1
    session.flush()
    if sent or failed:
        logger.info("outbox: %d notification(s) sent, %d failed", sent, failed)
    return sent, failed
