"""Users choose their channels and language; the outbox writes one notice per channel."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import InvalidInput, NotFound
from app.models import User
from app.notifications.schemas import NotificationSettings, NotificationSettingsRead


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
    user = _me(session, principal)
    user.notify_channels = sorted(set(data.channels))
    user.language = data.language
    session.flush()
    return read(session, principal=principal, available=available)
