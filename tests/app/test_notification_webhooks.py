"""The ``webhook`` notification channel: each user's own endpoint, signed per Standard
Webhooks with a secret only they saw, worded in their language, handed over once and retried.
Against a real receiver on loopback that verifies every signature with ``standardwebhooks``."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Notification, NotificationStatus, User, WebhookDelivery
from app.notifications import outbox
from app.settings import Settings
from app.supervision import service as supervision_service
from app.supervision.senders import deliver_pending, senders_for
from app.webhooks.delivery import deliver_due
from app.webhooks.personal import message_id_of
from tests.app.conftest import Cast
from tests.app.test_supervision_api import backdated_request
from tests.app.webhook_receiver import Receiver, loopback_settings
from tests.factories import sessions_of_test

HOOK = "/api/v1/users/me/notification-webhook"
SETTINGS = "/api/v1/users/me/notification-settings"


@pytest.fixture
def settings() -> Settings:
    return loopback_settings(stats_cache_seconds=0)


def set_up(
    client: TestClient, cast: Cast, user: User, receiver: Receiver, language: str = "en"
) -> dict[str, Any]:
    """The user's endpoint, then the webhook channel chosen (with the language)."""
    headers = cast.headers(user)
    r = client.post(HOOK, json={"url": receiver.url}, headers=headers)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    receiver.secret = created["secret"]
    assert receiver.secret.startswith("whsec_")
    r = client.put(SETTINGS, json={"channels": ["webhook"], "language": language}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["channels"] == ["webhook"]
    return created


def deliver(db: Session, settings: Settings) -> tuple[tuple[int, int], int]:
    """The notification outbox (which hands notices over), then the webhook sender."""
    handed = deliver_pending(sessions_of_test(db), senders_for(settings))
    db.commit()
    return handed, deliver_due(sessions_of_test(db), settings).sent


class TestEndpoint:
    def test_the_secret_is_shown_once_and_the_endpoint_is_the_users_own(
        self, client: TestClient, cast: Cast, receiver: Receiver
    ) -> None:
        created = set_up(client, cast, cast.coordinator, receiver)
        mine = client.get(HOOK, headers=cast.headers(cast.coordinator))
        assert mine.status_code == 200
        assert "secret" not in mine.json()
        assert mine.json()["url"] == receiver.url
        assert client.get(HOOK, headers=cast.headers(cast.other_coordinator)).status_code == 404
        # Not an event subscription: the admins' list and routes do not show it.
        admin = cast.headers(cast.admin)
        assert client.get("/api/v1/webhooks", headers=admin).json()["items"] == []
        assert client.get(f"/api/v1/webhooks/{created['id']}", headers=admin).status_code == 404
        again = client.post(
            HOOK, json={"url": receiver.url}, headers=cast.headers(cast.coordinator)
        )
        assert again.status_code == 409

    @pytest.mark.parametrize("role", ["admin", "coordinator", "enterprise", "expert", "platform"])
    def test_every_role_has_its_own(
        self, client: TestClient, cast: Cast, receiver: Receiver, role: str
    ) -> None:
        set_up(client, cast, cast.by_role()[role], receiver)
        for other, user in cast.by_role().items():
            expected = 200 if other == role else 404
            assert client.get(HOOK, headers=cast.headers(user)).status_code == expected

    def test_the_channel_needs_an_endpoint_first(self, client: TestClient, cast: Cast) -> None:
        r = client.put(
            SETTINGS, json={"channels": ["webhook"]}, headers=cast.headers(cast.coordinator)
        )
        assert r.status_code == 422
        assert r.json()["field"] == "channels"

    def test_private_targets_are_refused_unless_allowed(
        self, client: TestClient, cast: Cast, settings: Settings
    ) -> None:
        settings.webhook_allow_private_targets = False
        r = client.post(
            HOOK, json={"url": "http://127.0.0.1:9/x"}, headers=cast.headers(cast.coordinator)
        )
        assert r.status_code == 422
        assert r.json()["field"] == "url"

    def test_deleting_it_drops_the_channel(
        self, client: TestClient, cast: Cast, receiver: Receiver
    ) -> None:
        set_up(client, cast, cast.coordinator, receiver)
        headers = cast.headers(cast.coordinator)
        assert client.delete(HOOK, headers=headers).status_code == 204
        assert client.get(HOOK, headers=headers).status_code == 404
        assert client.get(SETTINGS, headers=headers).json()["channels"] == ["log"]

    def test_pause_needs_if_match(self, client: TestClient, cast: Cast, receiver: Receiver) -> None:
        set_up(client, cast, cast.coordinator, receiver)
        headers = cast.headers(cast.coordinator)
        assert client.patch(HOOK, json={"paused": True}, headers=headers).status_code == 428
        etag = client.get(HOOK, headers=headers).headers["etag"]
        r = client.patch(HOOK, json={"paused": True}, headers=headers | {"If-Match": etag})
        assert r.status_code == 200, r.text
        assert r.json()["paused"] is True
        stale = client.patch(HOOK, json={"paused": False}, headers=headers | {"If-Match": etag})
        assert stale.status_code == 412


class TestDelivery:
    def test_an_overdue_notice_arrives_signed_in_the_users_language(
        self,
        client: TestClient,
        cast: Cast,
        db: Session,
        receiver: Receiver,
        settings: Settings,
    ) -> None:
        set_up(client, cast, cast.coordinator, receiver, language="en")
        request = backdated_request(db, cast, days=2)  # level 1: the region's coordinator
        supervision_service.sweep(db)
        db.commit()
        [notice] = db.scalars(
            select(Notification).where(Notification.recipient_user_id == cast.coordinator.id)
        ).all()
        assert notice.channel == "webhook"
        (handed, failed), sent = deliver(db, settings)
        assert (handed, failed, sent) == (1, 0, 1)
        assert receiver.rejected == 0
        [message] = receiver.verified
        assert receiver.ids == [message_id_of(notice)]
        assert message["type"] == "notification.overdue.unrouted"
        assert message["data"]["language"] == "en"
        assert message["data"]["subject"].startswith("[Reminder] Request not routed in time")
        assert str(request.id) in message["data"]["subject"]
        assert message["data"]["details"]["request_id"] == request.id
        assert "to" not in message["data"]["details"]
        log = client.get(f"{HOOK}/deliveries", headers=cast.headers(cast.coordinator)).json()
        assert [(d["status"], d["message_id"]) for d in log["items"]] == [
            ("sent", message_id_of(notice))
        ]
        assert log["total"] == 1

    def test_handed_over_once_and_retried_with_the_same_id(
        self,
        client: TestClient,
        cast: Cast,
        db: Session,
        receiver: Receiver,
        settings: Settings,
    ) -> None:
        set_up(client, cast, cast.coordinator, receiver, language="zh")
        backdated_request(db, cast, days=2)
        supervision_service.sweep(db)
        supervision_service.sweep(db)  # a second sweep writes nothing new
        receiver.status = 503
        (handed, _), sent = deliver(db, settings)
        assert (handed, sent) == (1, 0)
        assert deliver(db, settings) == ((0, 0), 0)  # handed over once; the retry waits
        [row] = db.scalars(select(WebhookDelivery)).all()
        assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 503)
        receiver.status = 200
        assert deliver_due(sessions_of_test(db), settings, now=row.next_attempt_at).sent == 1
        assert len(set(receiver.ids)) == 1
        assert len(receiver.ids) == 2  # the 503 and the retry, one webhook-id
        assert receiver.verified[-1]["data"]["subject"].startswith("[提醒] 诉求未按期交办")

    def test_a_notice_for_a_user_without_an_endpoint_is_not_lost_silently(
        self, db: Session, cast: Cast, settings: Settings
    ) -> None:
        cast.coordinator.notify_channels = ["webhook"]  # chosen, then the endpoint went away
        db.commit()
        backdated_request(db, cast, days=2)
        supervision_service.sweep(db)
        handed, failed = deliver_pending(sessions_of_test(db), senders_for(settings))
        assert (handed, failed) == (0, 1)
        [notice] = db.scalars(select(Notification)).all()
        assert notice.status == NotificationStatus.PENDING
        assert "no notification webhook" in notice.last_error

    def test_decisions_are_worded_from_the_templates_per_channel(
        self,
        client: TestClient,
        cast: Cast,
        db: Session,
        receiver: Receiver,
        settings: Settings,
    ) -> None:
        set_up(client, cast, cast.expert_user, receiver, language="en")
        expert = db.get(User, cast.expert_user.id)  # as the API left it
        assert expert is not None
        written = outbox.enqueue(
            db,
            recipients=[expert],
            kind="provider.approved",
            subject="服务方审核通过 / your provider profile was approved",
            body="Welcome aboard.",
            payload={"provider_id": cast.expert.id, "vetting": "approved"},
            region_code="350500",
            cause="event:1",
        )
        assert written == 1
        (handed, _), sent = deliver(db, settings)
        assert (handed, sent) == (1, 1)
        [message] = receiver.verified
        assert message["data"]["subject"] == "Your provider profile was approved"
        assert message["data"]["body"].endswith("Welcome aboard.")

    def test_audit_events_never_reach_a_personal_endpoint(
        self,
        client: TestClient,
        cast: Cast,
        db: Session,
        receiver: Receiver,
    ) -> None:
        set_up(client, cast, cast.admin, receiver)
        r = client.post(
            "/api/v1/match-runs", json={"scope_region": "35"}, headers=cast.headers(cast.admin)
        )
        assert r.status_code == 202, r.text
        assert db.scalars(select(WebhookDelivery)).all() == []
