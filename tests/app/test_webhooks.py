"""Signed webhooks end to end, against a real receiver on loopback that verifies every
delivery with the ``standardwebhooks`` library (what a subscriber would run)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.backoff import backoff
from app.common.clock import utc_now
from app.models import WebhookDelivery, WebhookDeliveryStatus
from app.settings import Settings
from app.webhooks.delivery import deliver_due
from app.webhooks.targets import TargetRefused, check_target
from tests.app.conftest import Cast
from tests.app.webhook_receiver import Receiver, loopback_settings
from tests.conftest import TEST_SECRET
from tests.factories import sessions_of_test

URL = "/api/v1/webhooks"


@pytest.fixture
def settings() -> Settings:
    return loopback_settings()


def subscribe(client: TestClient, cast: Cast, receiver: Receiver, events: list[str]) -> int:
    r = client.post(
        URL, json={"url": receiver.url, "events": events}, headers=cast.headers(cast.admin)
    )
    assert r.status_code == 201, r.text
    receiver.secret = r.json()["secret"]
    assert receiver.secret.startswith("whsec_")
    return int(r.json()["id"])


def queue_run(client: TestClient, cast: Cast) -> None:
    """Anything audited will do: queueing a match run records ``match_run.created``."""
    r = client.post(
        "/api/v1/match-runs", json={"scope_region": "35"}, headers=cast.headers(cast.admin)
    )
    assert r.status_code == 202, r.text


def deliveries(db: Session) -> list[WebhookDelivery]:
    db.expire_all()
    return list(db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


class TestSubscriptions:
    def test_the_secret_is_shown_once(
        self, client: TestClient, cast: Cast, receiver: Receiver
    ) -> None:
        webhook_id = subscribe(client, cast, receiver, ["match_run.*"])
        r = client.get(f"{URL}/{webhook_id}", headers=cast.headers(cast.admin))
        assert r.status_code == 200
        assert "secret" not in r.json()
        listed = client.get(URL, headers=cast.headers(cast.admin)).json()["items"]
        assert [w["id"] for w in listed] == [webhook_id]
        assert "secret" not in listed[0]

    @pytest.mark.parametrize("role", ["coordinator", "enterprise", "expert", "platform"])
    def test_only_admins_manage_webhooks(
        self, client: TestClient, cast: Cast, receiver: Receiver, role: str
    ) -> None:
        webhook_id = subscribe(client, cast, receiver, ["*"])
        headers = cast.headers(cast.by_role()[role])
        body = {"url": receiver.url, "events": ["*"]}
        assert client.post(URL, json=body, headers=headers).status_code == 403
        assert client.get(URL, headers=headers).status_code == 403
        assert client.get(f"{URL}/{webhook_id}/deliveries", headers=headers).status_code == 403
        assert client.post(f"{URL}/{webhook_id}/rotate-secret", headers=headers).status_code == 403

    def test_anonymous_is_refused(self, client: TestClient) -> None:
        assert client.get(URL).status_code == 401

    @pytest.mark.parametrize(
        "body",
        [
            {"url": "ftp://example.com/x", "events": ["*"]},
            {"url": "https://user:pw@example.com/x", "events": ["*"]},
            {"url": "https://example.com/x", "events": ["not an event"]},
            {"url": "https://example.com/x", "events": []},
        ],
    )
    def test_bad_subscriptions_name_the_field(
        self, client: TestClient, cast: Cast, body: dict[str, Any]
    ) -> None:
        r = client.post(URL, json=body, headers=cast.headers(cast.admin))
        assert r.status_code == 422
        assert r.json()["field"].split(".")[0] in ("url", "events")

    def test_a_stale_edit_is_refused(
        self, client: TestClient, cast: Cast, receiver: Receiver
    ) -> None:
        webhook_id = subscribe(client, cast, receiver, ["*"])
        headers = cast.headers(cast.admin)
        etag = client.get(f"{URL}/{webhook_id}", headers=headers).headers["ETag"]
        first = client.patch(
            f"{URL}/{webhook_id}", json={"paused": True}, headers=headers | {"If-Match": etag}
        )
        assert first.status_code == 200
        stale = client.patch(
            f"{URL}/{webhook_id}", json={"paused": False}, headers=headers | {"If-Match": etag}
        )
        assert stale.status_code == 412


class TestTargets:
    def production(self, **overrides: Any) -> Settings:
        return Settings(
            environment="production", secret_key="p" * 40, database_url="sqlite://", **overrides
        )

    @pytest.mark.parametrize(
        "url",
        [
            "https://127.0.0.1/hook",
            "https://10.1.2.3/hook",
            "https://192.168.0.10/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://localhost/hook",
        ],
    )
    def test_private_loopback_and_link_local_are_refused(self, url: str) -> None:
        with pytest.raises(TargetRefused):
            check_target(url, self.production())

    def test_production_takes_https_only(self) -> None:
        with pytest.raises(TargetRefused, match="https"):
            check_target("http://93.184.215.14/hook", self.production())
        check_target("https://93.184.215.14/hook", self.production())

    def test_a_setting_allows_private_targets(self) -> None:
        check_target("https://127.0.0.1/hook", self.production(webhook_allow_private_targets=True))

    def test_the_api_refuses_them_with_the_field(
        self, client: TestClient, cast: Cast, settings: Settings
    ) -> None:
        settings.webhook_allow_private_targets = False
        r = client.post(
            URL,
            json={"url": "http://127.0.0.1:9/x", "events": ["*"]},
            headers=cast.headers(cast.admin),
        )
        assert r.status_code == 422
        assert r.json()["field"] == "url"


class TestDelivery:
    def test_events_arrive_signed_and_verified(
        self, client: TestClient, cast: Cast, db: Session, receiver: Receiver, settings: Settings
    ) -> None:
        webhook_id = subscribe(client, cast, receiver, ["match_run.*"])
        queue_run(client, cast)
        outcome = deliver_due(sessions_of_test(db), settings)
        db.commit()
        assert outcome.sent == 1
        assert receiver.rejected == 0
        [message] = receiver.verified
        assert message["type"] == "match_run.created"
        assert message["data"]["entity_type"] == "match_runs"
        log = client.get(f"{URL}/{webhook_id}/deliveries", headers=cast.headers(cast.admin)).json()
        [entry] = log["items"]
        assert entry["status"] == "sent"
        assert entry["last_status_code"] == 200
        assert entry["message_id"] == receiver.ids[0]

    def test_unsubscribed_events_are_not_sent(
        self, client: TestClient, cast: Cast, db: Session, receiver: Receiver
    ) -> None:
        subscribe(client, cast, receiver, ["assignment.accepted"])
        queue_run(client, cast)
        assert deliveries(db) == []

    def test_failures_back_off_then_succeed_with_the_same_id(
        self, client: TestClient, cast: Cast, db: Session, receiver: Receiver, settings: Settings
    ) -> None:
        subscribe(client, cast, receiver, ["*"])
        queue_run(client, cast)
        receiver.status = 503
        now = utc_now()
        assert deliver_due(sessions_of_test(db), settings, now=now).retrying == 1
        [row] = deliveries(db)
        assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 503)
        assert now + timedelta(seconds=15) <= row.next_attempt_at <= now + timedelta(seconds=30)
        assert deliver_due(sessions_of_test(db), settings, now=now).sent == 0  # not due yet
        receiver.status = 200
        assert deliver_due(sessions_of_test(db), settings, now=row.next_attempt_at).sent == 1
        assert receiver.ids[0] == receiver.ids[-1]  # the retry kept its webhook-id

    def test_a_day_of_failures_ends_in_the_dead_letters_and_replay_revives(
        self, client: TestClient, cast: Cast, db: Session, receiver: Receiver, settings: Settings
    ) -> None:
        webhook_id = subscribe(client, cast, receiver, ["*"])
        queue_run(client, cast)
        receiver.status = 500
        now, attempts = utc_now(), 0
        while (row := deliveries(db)[0]).status == WebhookDeliveryStatus.PENDING:
            now = max(now, row.next_attempt_at)
            deliver_due(sessions_of_test(db), settings, now=now)
            attempts += 1
        assert row.status == WebhookDeliveryStatus.FAILED
        assert now - row.created_at >= timedelta(hours=24)  # retried for at least a day
        assert 8 <= attempts <= 30
        receiver.status = 200
        headers = cast.headers(cast.admin)
        r = client.post(f"{URL}/{webhook_id}/deliveries/{row.id}/replay", headers=headers)
        assert r.status_code == 202
        assert r.json()["status"] == "pending"
        assert deliver_due(sessions_of_test(db), settings).sent == 1
        assert receiver.verified[-1]["type"] == "match_run.created"

    def test_paused_subscriptions_hold_their_deliveries(
        self, client: TestClient, cast: Cast, db: Session, receiver: Receiver, settings: Settings
    ) -> None:
        webhook_id = subscribe(client, cast, receiver, ["*"])
        headers = cast.headers(cast.admin)

        def set_paused(paused: bool) -> dict[str, object]:
            etag = client.get(f"{URL}/{webhook_id}", headers=headers).headers["etag"]
            response = client.patch(
                f"{URL}/{webhook_id}", json={"paused": paused}, headers=headers | {"If-Match": etag}
            )
            assert response.status_code == 200, response.text
            body: dict[str, object] = response.json()
            return body

        assert set_paused(True)["paused"]
        queue_run(client, cast)
        assert deliver_due(sessions_of_test(db), settings).sent == 0
        set_paused(False)
        assert deliver_due(sessions_of_test(db), settings).sent == 1

    def test_a_rotated_secret_signs_from_now_on(
        self, client: TestClient, cast: Cast, db: Session, receiver: Receiver, settings: Settings
    ) -> None:
        webhook_id = subscribe(client, cast, receiver, ["*"])
        old = receiver.secret
        r = client.post(f"{URL}/{webhook_id}/rotate-secret", headers=cast.headers(cast.admin))
        assert r.status_code == 200
        assert r.json()["secret"] != old
        queue_run(client, cast)
        deliver_due(sessions_of_test(db), settings)
        assert receiver.rejected == 1  # still verifying with the old secret
        receiver.secret = r.json()["secret"]
        row = deliveries(db)[0]
        client.post(
            f"{URL}/{webhook_id}/deliveries/{row.id}/replay", headers=cast.headers(cast.admin)
        )
        deliver_due(sessions_of_test(db), settings)
        assert receiver.rejected == 1
        assert len(receiver.verified) == 1


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    assert backoff(1, lambda: 0.0) == timedelta(seconds=15)
    assert backoff(1, lambda: 1.0) == timedelta(seconds=30)
    assert backoff(3, lambda: 1.0) == timedelta(minutes=2)
    assert backoff(40, lambda: 1.0) == timedelta(hours=4)


@pytest.mark.parametrize(
    "url",
    ["https://" + "x" * 70 + ".com/h", "https://a..b/h", "https://example.com:99999/h", "https://"],
)
def test_unusable_urls_are_refused_not_crashed_on(url: str) -> None:
    settings = Settings(environment="test", secret_key=TEST_SECRET, database_url="sqlite://")
    with pytest.raises(TargetRefused):
        check_target(url, settings)
