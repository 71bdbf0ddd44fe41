"""Writing a notification to the outbox, in the transaction of the change that causes it.

The sender delivers it afterwards (at-least-once); ``dedupe_key`` keeps one notification per
cause and recipient however often the cause is replayed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.models import Notification, User
from app.notifications import templates


def users_of(
    session: Session, *, provider_id: int | None = None, enterprise_id: int | None = None
) -> list[User]:
    """The accounts bound to a provider or an enterprise (whom a decision about it concerns)."""
    statement = select(User).where(User.is_active.is_(True)).order_by(User.id)
    if provider_id is not None:
        statement = statement.where(User.provider_id == provider_id)
    elif enterprise_id is not None:
        statement = statement.where(User.enterprise_id == enterprise_id)
    else:
        return []
    return list(session.scalars(statement))


def enqueue(
    session: Session,
    *,
    recipients: Iterable[User],
    kind: str,
    subject: str,
    body: str,
    payload: dict[str, Any],
    region_code: str,
    cause: str,
) -> int:
    """One pending notification per recipient and channel they chose; ``cause`` (e.g.
    ``"event:42"``) dedupes them. A ``kind`` with templates is worded in each recipient's
    language (``body`` fills ``$reason``); otherwise ``subject`` and ``body`` are sent as
    given."""
    now, written = utc_now(), 0
    for user in recipients:
        if kind in templates.TEMPLATES:
            values = payload | {"reason": body}
            subject, body_of_user = templates.render(kind, user.language, values)
        else:
            body_of_user = body
        for channel in user.notify_channels or ["log"]:
            key = f"{kind}:{cause}:u{user.id}"[:190] + ("" if channel == "log" else f":{channel}")
            if session.scalar(select(Notification.id).where(Notification.dedupe_key == key)):
                continue
            session.add(
                Notification(
                    recipient_user_id=user.id,
                    channel=channel,
                    kind=kind,
                    subject=subject[:300],
                    body=body_of_user,
                    payload=payload
                    | {"language": templates.language_of(user.language)}
                    | ({"to": user.email} if channel == "email" else {}),
                    region_code=region_code,
                    dedupe_key=key,
                    created_at=now,
                )
            )
            written += 1
    session.flush()
    return written
