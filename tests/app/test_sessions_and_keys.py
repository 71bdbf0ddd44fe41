"""Sessions and keys: tokens die with a password change or deactivation, keys are digests
that cannot mint keys, log-in is throttled, passwords follow rules that name the field."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.credentials import api_key_digest
from app.models import ApiKey
from app.settings import Settings
from tests.app.conftest import Cast
from tests.conftest import TEST_SECRET
from tests.factories import PASSWORD
from tests.live import settings_for

API = "/api/v1"


def log_in(client: TestClient, email: str, password: str) -> Any:
    return client.post(f"{API}/auth/token", data={"username": email, "password": password})


def bearer(response: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


class TestTokensEnd:
    def test_a_password_change_ends_every_earlier_token(
        self, client: TestClient, cast: Cast
    ) -> None:
        old = bearer(log_in(client, cast.coordinator.email, PASSWORD))
        changed = client.post(
            f"{API}/users/me/password",
            json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
            headers=old,
        )
        assert changed.status_code == 204, changed.text
        assert client.get(f"{API}/users/me", headers=old).status_code == 401
        assert log_in(client, cast.coordinator.email, PASSWORD).status_code == 401
        new = bearer(log_in(client, cast.coordinator.email, "a brand new passphrase"))
        assert client.get(f"{API}/users/me", headers=new).status_code == 200

    def test_deactivation_ends_tokens_even_after_reactivation(
        self, client: TestClient, cast: Cast
    ) -> None:
        token = bearer(log_in(client, cast.expert_user.email, PASSWORD))
        admin = cast.headers(cast.admin)
        url = f"{API}/users/{cast.expert_user.id}"
        assert (
            client.patch(
                url, json={"is_active": False}, headers=admin | {"If-Match": "*"}
            ).status_code
            == 200
        )
        assert client.get(f"{API}/users/me", headers=token).status_code == 401
        assert (
            client.patch(
                url, json={"is_active": True}, headers=admin | {"If-Match": "*"}
            ).status_code
            == 200
        )
        assert client.get(f"{API}/users/me", headers=token).status_code == 401
        assert log_in(client, cast.expert_user.email, PASSWORD).status_code == 200


class TestApiKeyDigests:
    def test_the_key_is_stored_as_its_keyed_digest_only(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        created = client.post(
            f"{API}/api-keys", json={"name": "erp"}, headers=cast.headers(cast.ent_user)
        )
        assert created.status_code == 201
        key = created.json()["key"]
        row = db.scalars(select(ApiKey).where(ApiKey.id == created.json()["id"])).one()
        assert row.key_digest == api_key_digest(key, secret_key=TEST_SECRET)
        assert re.fullmatch(r"[0-9a-f]{64}", row.key_digest or "")
        assert key not in str(vars(row))

    def test_a_key_cannot_mint_keys(self, client: TestClient, cast: Cast) -> None:
        key = client.post(
            f"{API}/api-keys", json={"name": "erp"}, headers=cast.headers(cast.ent_user)
        ).json()["key"]
        minted = client.post(f"{API}/api-keys", json={"name": "child"}, headers={"X-API-Key": key})
        assert minted.status_code == 403
        assert client.get(f"{API}/users/me", headers={"X-API-Key": key}).status_code == 200

    def test_a_read_with_a_key_does_not_write_last_used(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        created = client.post(
            f"{API}/api-keys", json={"name": "erp"}, headers=cast.headers(cast.ent_user)
        ).json()
        assert (
            client.get(f"{API}/users/me", headers={"X-API-Key": created["key"]}).status_code == 200
        )
        row = db.get(ApiKey, created["id"])
        assert row is not None
        db.refresh(row)
        assert row.last_used_at is None  # noted in memory, written in a later batch


class TestLastUsedIsBatched:
    @pytest.fixture
    def settings(self) -> Settings:
        return settings_for(
            "sqlite://",
            embedded_worker=True,
            api_key_usage_flush_seconds=0,
        )

    def test_use_is_recorded_in_its_own_short_write(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        created = client.post(
            f"{API}/api-keys", json={"name": "erp"}, headers=cast.headers(cast.ent_user)
        ).json()
        assert (
            client.get(f"{API}/users/me", headers={"X-API-Key": created["key"]}).status_code == 200
        )
        row = db.get(ApiKey, created["id"])
        assert row is not None
        db.refresh(row)
        assert row.last_used_at is not None


class TestThrottle:
    @pytest.fixture
    def settings(self) -> Settings:
        return settings_for(
            "sqlite://",
            embedded_worker=True,
            login_rate_per_account="3/minute",
            login_rate_per_address="5/minute",
        )

    def test_an_account_under_attack_gets_429_with_retry_after(
        self, client: TestClient, cast: Cast
    ) -> None:
        statuses = [
            log_in(client, cast.admin.email, "guess-number-x").status_code for _ in range(3)
        ]
        assert statuses == [401, 401, 401]
        blocked = log_in(client, cast.admin.email, PASSWORD)
        assert blocked.status_code == 429
        assert 1 <= int(blocked.headers["retry-after"]) <= 60
        assert blocked.headers["content-type"] == "application/problem+json"

    def test_one_address_is_capped_across_accounts(self, client: TestClient, cast: Cast) -> None:
        emails = [f"nobody{i}@example.com" for i in range(5)]
        assert all(log_in(client, e, "guess-number-x").status_code == 401 for e in emails)
        assert log_in(client, cast.admin.email, PASSWORD).status_code == 429


class TestPasswordRules:
    @pytest.mark.parametrize(
        ("password", "words"),
        [
            ("short1", "at least 10"),
            ("boss.wang.2026", "e-mail"),
            ("password123", "too common"),
            ("aaaaaaaaaaaa", "too common"),
        ],
    )
    def test_weak_passwords_are_422_naming_the_field(
        self, client: TestClient, password: str, words: str
    ) -> None:
        registration = client.post(
            f"{API}/auth/register/provider",
            json={
                "email": "boss.wang@example.com",
                "password": password,
                "full_name": "王",
                "provider": {
                    "kind": "expert",
                    "name": "王专家",
                    "home_region_code": "350582",
                    "skills": {"financing": 2},
                },
            },
        )
        assert registration.status_code == 422, registration.text
        assert registration.json()["field"] == "password"
        assert words in registration.json()["detail"].replace("String should have", "at")

    def test_a_new_password_may_not_be_the_email(self, client: TestClient, cast: Cast) -> None:
        response = client.post(
            f"{API}/users/me/password",
            json={"current_password": PASSWORD, "new_password": cast.admin.email},
            headers=cast.headers(cast.admin),
        )
        assert response.status_code == 422
        assert response.json()["field"] == "new_password"
