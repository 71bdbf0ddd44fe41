"""The ``webhook`` channel: a notice goes to its recipient's own endpoint, signed.

Sending here is a hand-over, not an HTTP call: the notice is written to the webhook outbox in
the notification outbox's own transaction, and the webhook sender delivers it (signed per
Standard Webhooks, retried for a day, dead-lettered, in the owner's delivery log).
"""

from __future__ import annotations

from sqlalchemy.orm import object_session

from app.models import Notification
from app.notifications.email import UndeliverableError
from app.webhooks import personal


class WebhookChannel:
    in_transaction = True  # the outbox calls it inside its claim's transaction

    def send(self, notification: Notification) -> None:
        session = object_session(notification)
        if session is None:
            raise RuntimeError("a notice is handed over inside the outbox's transaction")
        if not personal.hand_over(session, notification):
            raise UndeliverableError("the recipient has no notification webhook")
