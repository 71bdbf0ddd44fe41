"""Users choose their channels and language; the outbox writes one notice per channel."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.common.principal import Principal
from app.errors import InvalidInput, NotFound
from app.models import User, WebhookSubscription
from app.notifications.channels import LOG, WEBHOOK
from app.notifications.schemas import NotificationSettings, NotificationSettingsRead
from app.webhooks import personal


def _me(session: Session, principal: Principal) -> User:
    user = session.get(User, principal.user_id)
    if user is None:
        raise NotFound("user not found")
    return user


def read(
    session: Session, *, principal: Principal, available: frozenset[str]
) -> NotificationSettingsRead:
    user = _me(session, principal)
    return NotificationSettingsRead(
        channels=list(user.notify_channels),
        language="en" if user.language == "en" else "zh",
        available_channels=sorted(available),
    )


def update(
    session: Session,
    *,
    principal: Principal,
    data: NotificationSettings,
    available: frozenset[str],
) -> NotificationSettingsRead:
    """Replace the user's choice; a channel this deployment cannot send on is refused."""
    unknown = sorted(set(data.channels) - available)
    if unknown:
        raise InvalidInput(
            f"channel(s) not available here: {', '.join(unknown)}; "
            f"choose from {', '.join(sorted(available))}",
            field="channels",
        )
    if WEBHOOK in data.channels and personal.find(session, principal.user_id) is None:
        raise InvalidInput(
            "the webhook channel needs your notification webhook: "
            "POST /api/v1/users/me/notification-webhook first",
            field="channels",
        )
    user = _me(session, principal)
    user.notify_channels = sorted(set(data.channels))
    user.language = data.language
    session.flush()
    return read(session, principal=principal, available=available)


def remove_webhook(
    session: Session, *, principal: Principal, endpoint: WebhookSubscription
) -> None:
    """Delete the user's endpoint and stop choosing its channel (the log if nothing is left):
    no notice is written for an endpoint that is gone."""
    user = _me(session, principal)
    channels = [c for c in user.notify_channels if c != WEBHOOK]
    user.notify_channels = channels or [LOG]
    personal.delete(session, endpoint=endpoint)
