"""E-mail through any SMTP relay (standard library ``smtplib``): TLS and log-in by settings.

Idempotent by construction: the ``Message-ID`` is derived from the outbox row's unique
``dedupe_key``, so if a crash between sending and committing makes the outbox send again,
the recipient's mail system sees the same message twice and can drop the copy.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal

from app.models import Notification

TlsMode = Literal["starttls", "ssl", "none"]


class UndeliverableError(Exception):
    """The notice cannot be e-mailed (no address): retrying will not help."""


def message_id(notification: Notification, domain: str) -> str:
    digest = hashlib.sha256(notification.dedupe_key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


class SmtpSender:
    """One SMTP connection per message: the outbox sends in small batches every few minutes,
    so a kept-open connection would mostly be an idle one the relay closes anyway."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        tls: TlsMode = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.sender, self.tls = host, port, sender, tls
        self.username, self.password, self.timeout = username, password, timeout
        self.ssl_context = ssl_context or ssl.create_default_context()

    def compose(self, notification: Notification) -> EmailMessage:
        address = str(notification.payload.get("to") or "")
        if not address:
            raise UndeliverableError("the notification has no e-mail address")
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = address
        message["Subject"] = notification.subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = message_id(notification, self.sender.rpartition("@")[2] or "zhuqi")
        message.set_content(notification.body)
        return message

    def _connect(self) -> smtplib.SMTP:
        if self.tls == "ssl":
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.ssl_context
            )
        client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.tls == "starttls":
            client.starttls(context=self.ssl_context)
        return client

    def send(self, notification: Notification) -> None:
        message = self.compose(notification)
        with self._connect() as client:
            if self.username:
                client.login(self.username, self.password or "")
            client.send_message(message)
