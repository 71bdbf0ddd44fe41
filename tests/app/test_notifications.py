"""Real notification senders: users choose channels and language; SMTP against a real server.

The SMTP tests run aiosmtpd on loopback (with STARTTLS on a throw-away certificate made by
``openssl``, and AUTH), so what is checked is what a relay receives.
"""

from __future__ import annotations

import email
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd import smtp as aiosmtp
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from aiosmtpd.smtp import Session as SMTPSession
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.models import Notification, NotificationStatus, User
from app.notifications.email import SmtpSender, message_id
from app.notifications.templates import LANGUAGES, TEMPLATES, render
from app.settings import Settings
from app.supervision import service as supervision_service
from app.supervision.senders import deliver_pending, senders_for
from tests.app.conftest import Cast
from tests.app.test_supervision_api import backdated_request
from tests.factories import fetch, sessions_of_test
from tests.live import free_port

URL = "/api/v1/users/me/notification-settings"
SMTP_USER, SMTP_PASSWORD = "zhuqi", "relay-password-42"


@dataclass
class Inbox:
    """What the loopback relay accepted, and who logged in."""

    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: aiosmtp.SMTP, session: SMTPSession, envelope: Envelope
    ) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        self.messages.append(email.message_from_bytes(raw, _class=EmailMessage, policy=default))
        return "250 OK"

    def authenticate(
        self,
        server: aiosmtp.SMTP,
        session: SMTPSession,
        envelope: Envelope,
        mechanism: str,
        data: Any,
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == SMTP_USER
            and data.password.decode() == SMTP_PASSWORD
        )
        if ok:
            self.logins.append(SMTP_USER)
        # handled=False: aiosmtpd then answers a refusal with 535 itself. Its default
        # (handled=True) means "the hook already replied", so a refused client would wait
        # for an answer that never comes, until its own timeout.
        return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass
class Relay:
    inbox: Inbox
    port: int
    cert: Path

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "secret_key": "test-secret-key-that-is-long-enough-0123456789",
            "database_url": "sqlite://",
            "smtp_host": "127.0.0.1",
            "smtp_port": self.port,
            "smtp_tls": "starttls",
            "smtp_username": SMTP_USER,
            "smtp_password": SMTP_PASSWORD,
            "smtp_from": "notices@zhuqi.example",
        }
        return Settings(**(values | overrides))

    def sender(self) -> SmtpSender:
        settings = self.settings()
        sender = senders_for(settings)["email"]
        assert isinstance(sender, SmtpSender)
        sender.ssl_context = ssl.create_default_context(cafile=str(self.cert))
        return sender


@pytest.fixture
def relay(certificate: tuple[Path, Path]) -> Iterator[Relay]:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=inbox.authenticate,
        auth_required=True,
    )
    controller.start()
    try:
        yield Relay(inbox, port, cert)
    finally:
        controller.stop()


def notice(db: Session, user: User, *, channel: str = "email", key: str = "n1") -> Notification:
    subject, body = render("overdue.unrouted", user.language, _values(), level=1)
    row = Notification(
        recipient_user_id=user.id,
        channel=channel,
        kind="overdue.unrouted",
        subject=subject,
        body=body,
        payload={"request_id": 7, "to": user.email},
        dedupe_key=key,
        created_at=utc_now(),
    )
    db.add(row)
    db.commit()
    return row


def _values() -> dict[str, object]:
    return {"request_id": 7, "due_at": "2026-11-29 08:00 UTC", "overdue_hours": 12.5}


class TestTemplates:
    @pytest.mark.parametrize("kind", sorted(k for k in TEMPLATES if k.startswith("overdue.")))
    @pytest.mark.parametrize("language", LANGUAGES)
    def test_every_notice_renders_in_every_language(self, kind: str, language: str) -> None:
        subject, body = render(kind, language, _values(), level=2)
        assert "7" in subject
        assert "12.5" in body
        chinese = any("\u4e00" <= ch <= "\u9fff" for ch in subject + body)
        assert chinese == (language == "zh")

    @pytest.mark.parametrize("kind", sorted(k for k in TEMPLATES if not k.startswith("overdue.")))
    @pytest.mark.parametrize("language", LANGUAGES)
    def test_every_decision_renders_in_every_language(self, kind: str, language: str) -> None:
        """Tier and vetting decisions: the claimed tier and the reviewer's reason."""
        subject, body = render(kind, language, {"claimed_tier": "champion", "reason": "R-42"})
        assert body.endswith("R-42")
        assert "$" not in subject + body
        chinese = any("\u4e00" <= ch <= "\u9fff" for ch in subject + body)
        assert chinese == (language == "zh")

    def test_an_unknown_language_falls_back_to_chinese(self) -> None:
        assert render("overdue.offer", "fr", _values()) == render("overdue.offer", "zh", _values())


class TestChoosingChannels:
    def test_defaults_are_the_log_in_chinese(self, client: TestClient, cast: Cast) -> None:
        r = client.get(URL, headers=cast.headers(cast.ent_user))
        assert r.status_code == 200
        assert r.json() == {
            "channels": ["log"],
            "language": "zh",
            "available_channels": ["log", "webhook"],
        }

    def test_anonymous_is_refused(self, client: TestClient) -> None:
        assert client.get(URL).status_code == 401
        assert client.put(URL, json={"channels": ["log"]}).status_code == 401

    def test_email_is_refused_without_a_relay(self, client: TestClient, cast: Cast) -> None:
        r = client.put(URL, json={"channels": ["email"]}, headers=cast.headers(cast.coordinator))
        assert r.status_code == 422
        assert r.json()["field"] == "channels"

    @pytest.mark.parametrize("body", [{"channels": []}, {"channels": ["log"], "language": "fr"}])
    def test_bad_choices_name_the_field(
        self, client: TestClient, cast: Cast, body: dict[str, Any]
    ) -> None:
        r = client.put(URL, json=body, headers=cast.headers(cast.coordinator))
        assert r.status_code == 422
        assert r.json()["field"] in ("channels", "language")

    @pytest.mark.parametrize("role", ["admin", "coordinator", "enterprise", "expert", "platform"])
    def test_every_role_sets_its_own_and_only_its_own(
        self, client: TestClient, cast: Cast, db: Session, settings: Settings, role: str
    ) -> None:
        settings.smtp_host = "127.0.0.1"
        user = cast.by_role()[role]
        r = client.put(
            URL, json={"channels": ["email", "log"], "language": "en"}, headers=cast.headers(user)
        )
        assert r.status_code == 200, r.text
        assert r.json()["channels"] == ["email", "log"]
        db.expire_all()
        assert fetch(db, User, user.id).language == "en"
        others = db.scalars(select(User).where(User.id != user.id)).all()
        assert all(u.language == "zh" and u.notify_channels == ["log"] for u in others)


class TestSweepWritesPerChannel:
    def test_one_notice_per_chosen_channel_in_the_users_language(
        self, db: Session, cast: Cast
    ) -> None:
        cast.coordinator.notify_channels = ["log", "email"]
        cast.coordinator.language = "en"
        db.commit()
        request = backdated_request(db, cast, days=2)  # level 1: the region's coordinator
        first = supervision_service.sweep(db)
        again = supervision_service.sweep(db)
        rows = db.scalars(
            select(Notification).where(
                Notification.recipient_user_id == cast.coordinator.id,
                Notification.kind == "overdue.unrouted",
            )
        ).all()
        assert sorted(n.channel for n in rows) == ["email", "log"]
        assert all("Request not routed in time" in n.subject for n in rows)
        assert all(str(request.id) in n.subject for n in rows)
        [mail] = [n for n in rows if n.channel == "email"]
        assert mail.payload["to"] == cast.coordinator.email
        assert first.notifications >= 2
        assert again.notifications == 0


def fresh(db: Session, row: Notification) -> Notification:
    found = db.get(Notification, row.id, populate_existing=True)
    assert found is not None
    return found


class TestSmtp:
    def test_delivered_over_starttls_with_auth(self, db: Session, cast: Cast, relay: Relay) -> None:
        row = notice(db, cast.coordinator)
        sent, failed = deliver_pending(sessions_of_test(db), {"email": relay.sender()})
        assert (sent, failed) == (1, 0)
        [message] = relay.inbox.messages
        assert message["To"] == cast.coordinator.email
        assert message["From"] == "notices@zhuqi.example"
        assert message["Subject"] == row.subject
        assert message["Message-ID"] == message_id(row, "zhuqi.example")
        assert "12.5" in message.get_content()
        assert relay.inbox.logins == [SMTP_USER]
        row = fresh(db, row)  # the outbox sent a detached copy; read the row again
        assert row.status == NotificationStatus.SENT

    def test_a_wrong_password_is_a_retried_failure(
        self, db: Session, cast: Cast, relay: Relay
    ) -> None:
        row = notice(db, cast.coordinator)
        sender = relay.sender()
        sender.password = "wrong"
        assert deliver_pending(sessions_of_test(db), {"email": sender}) == (0, 1)
        row = fresh(db, row)  # the outbox sent a detached copy; read the row again
        assert row.status == NotificationStatus.PENDING
        assert row.attempts == 1
        assert "wrong" not in row.last_error
        assert "535" in row.last_error  # the relay's refusal, not a timeout waiting for it
        assert row.next_attempt_at is not None  # backing off: not retried on the next sweep
        assert deliver_pending(sessions_of_test(db), {"email": relay.sender()}) == (0, 0)
        retry = deliver_pending(
            sessions_of_test(db), {"email": relay.sender()}, now=row.next_attempt_at
        )
        assert retry == (1, 0)
        assert len(relay.inbox.messages) == 1

    def test_a_relay_that_is_down_leaves_it_pending_then_it_goes(
        self, db: Session, cast: Cast, relay: Relay
    ) -> None:
        row = notice(db, cast.coordinator)
        down = relay.sender()
        down.port = free_port()  # nobody listens there
        assert deliver_pending(sessions_of_test(db), {"email": down}) == (0, 1)
        row = fresh(db, row)  # the outbox sent a detached copy; read the row again
        assert (row.status, row.attempts) == (NotificationStatus.PENDING, 1)
        assert row.next_attempt_at is not None
        later = row.next_attempt_at
        assert deliver_pending(sessions_of_test(db), {"email": relay.sender()}, now=later) == (1, 0)
        assert deliver_pending(sessions_of_test(db), {"email": relay.sender()}, now=later) == (
            0,
            0,
        )  # sent once only
        assert len(relay.inbox.messages) == 1

    def test_a_resend_carries_the_same_message_id(self, db: Session, cast: Cast) -> None:
        row = notice(db, cast.coordinator)
        sender = SmtpSender(host="127.0.0.1", port=1, sender="a@zhuqi.example")
        assert sender.compose(row)["Message-ID"] == sender.compose(row)["Message-ID"]
