"""The principal cache: a repeated credential skips the user look-up, and every change to a
user or a key made in this process still takes effect on the very next request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from app.common.principal import Principal
from app.common.principal_cache import PrincipalCache, credential_digest, credential_epoch
from app.models import ApiKey, Role, User
from app.settings import Settings
from tests.app.conftest import Cast
from tests.live import settings_for

API = "/api/v1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def somebody(user_id: int = 1) -> Principal:
    return Principal(user_id=user_id, email=f"u{user_id}@example.com", role=Role.ENTERPRISE)


class TestPrincipalCacheAlone:
    def test_an_entry_lives_ttl_seconds(self) -> None:
        clock = Clock()
        cache = PrincipalCache(5, clock=clock, wall_clock=clock)
        digest = credential_digest("bearer", "token-a")
        cache.put(digest, somebody(), epoch=credential_epoch())
        clock.now += 4.9
        hit = cache.get(digest)
        assert hit is not None
        assert hit.principal == somebody()
        clock.now += 0.2
        assert cache.get(digest) is None

    def test_an_entry_never_outlives_its_token(self) -> None:
        clock = Clock()
        cache = PrincipalCache(5, clock=clock, wall_clock=clock)
        digest = credential_digest("bearer", "token-a")
        cache.put(digest, somebody(), epoch=credential_epoch(), expires_at=clock.now + 1)
        clock.now += 0.9
        assert cache.get(digest) is not None
        clock.now += 0.2
        assert cache.get(digest) is None

    def test_a_lookup_that_started_before_a_change_is_not_remembered(self) -> None:
        cache = PrincipalCache(5)
        digest = credential_digest("bearer", "token-a")
        cache.put(digest, somebody(), epoch=credential_epoch() - 1)
        assert cache.get(digest) is None

    def test_the_least_recently_used_go_first(self) -> None:
        cache = PrincipalCache(5, max_entries=2)
        digests = [credential_digest("bearer", f"token-{i}") for i in range(3)]
        cache.put(digests[0], somebody(0), epoch=credential_epoch())
        cache.put(digests[1], somebody(1), epoch=credential_epoch())
        assert cache.get(digests[0]) is not None  # 0 is now the most recently used
        cache.put(digests[2], somebody(2), epoch=credential_epoch())
        assert len(cache) == 2
        assert cache.get(digests[1]) is None
        assert cache.get(digests[0]) is not None
        assert cache.get(digests[2]) is not None

    def test_ttl_zero_remembers_nothing(self) -> None:
        cache = PrincipalCache(0)
        digest = credential_digest("bearer", "token-a")
        cache.put(digest, somebody(), epoch=credential_epoch())
        assert cache.get(digest) is None

    def test_token_and_key_digests_differ_and_hide_the_credential(self) -> None:
        assert credential_digest("bearer", "x") != credential_digest("key", "x")
        assert b"secret-token" not in credential_digest("bearer", "secret-token")


@pytest.fixture
def user_lookups(engine: Engine) -> Iterator[list[str]]:
    """SQL statements that read the users table, as the test's engine runs them."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM users" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    yield seen
    event.remove(engine, "before_cursor_execute", note)


def read_requests(client: TestClient, headers: dict[str, str]) -> int:
    status: int = client.get(f"{API}/requests", params={"limit": 5}, headers=headers).status_code
    return status


class TestRepeatedCredentials:
    def test_a_repeated_token_is_not_looked_up_again(
        self, client: TestClient, cast: Cast, user_lookups: list[str]
    ) -> None:
        headers = cast.headers(cast.coordinator)
        assert read_requests(client, headers) == 200
        assert len(user_lookups) == 1
        assert read_requests(client, headers) == 200
        assert len(user_lookups) == 1

    def test_a_wrong_token_is_401_every_time(self, client: TestClient) -> None:
        headers = {"Authorization": "Bearer not-a-token"}
        assert [read_requests(client, headers) for _ in range(2)] == [401, 401]


class TestCacheOff:
    @pytest.fixture
    def settings(self) -> Settings:
        return settings_for(
            "sqlite://",
            embedded_worker=True,
            stats_cache_seconds=0,
            principal_cache_seconds=0,
        )

    def test_every_request_looks_the_caller_up(
        self, client: TestClient, cast: Cast, user_lookups: list[str]
    ) -> None:
        headers = cast.headers(cast.coordinator)
        assert [read_requests(client, headers) for _ in range(2)] == [200, 200]
        assert len(user_lookups) == 2


class TestChangesTakeEffectAtOnce:
    def test_deactivating_a_user_ends_a_cached_token(self, client: TestClient, cast: Cast) -> None:
        token = cast.headers(cast.expert_user)
        assert client.get(f"{API}/users/me", headers=token).status_code == 200
        deactivated = client.patch(
            f"{API}/users/{cast.expert_user.id}",
            json={"is_active": False},
            headers=cast.headers(cast.admin) | {"If-Match": "*"},
        )
        assert deactivated.status_code == 200, deactivated.text
        assert client.get(f"{API}/users/me", headers=token).status_code == 401

    def test_a_new_region_applies_to_a_cached_token(
        self, client: TestClient, cast: Cast, app: FastAPI
    ) -> None:
        token = cast.headers(cast.coordinator)
        url = f"{API}/enterprises/{cast.other_ent.id}"  # Henan: outside the coordinator's "35"
        assert client.get(url, headers=token).status_code == 404
        moved = client.patch(
            f"{API}/users/{cast.coordinator.id}",
            json={"region_prefixes": ["41"]},
            headers=cast.headers(cast.admin) | {"If-Match": "*"},
        )
        assert moved.status_code == 200, moved.text
        assert client.get(url, headers=token).status_code == 200

    def test_revoking_a_cached_key_ends_it(self, client: TestClient, cast: Cast) -> None:
        owner = cast.headers(cast.ent_user)
        created = client.post(f"{API}/api-keys", json={"name": "erp"}, headers=owner).json()
        key = {"X-API-Key": created["key"]}
        assert client.get(f"{API}/users/me", headers=key).status_code == 200
        revoked = client.delete(f"{API}/api-keys/{created['id']}", headers=owner)
        assert revoked.status_code == 204, revoked.text
        assert client.get(f"{API}/users/me", headers=key).status_code == 401

    def test_a_change_written_by_any_session_applies(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        token = cast.headers(cast.platform_user)
        assert client.get(f"{API}/users/me", headers=token).status_code == 200
        user = db.get(User, cast.platform_user.id)
        assert user is not None
        user.is_active = False
        db.flush()
        assert client.get(f"{API}/users/me", headers=token).status_code == 401


class TestKeyUseIsStillNoted:
    @pytest.fixture
    def settings(self) -> Settings:
        return settings_for(
            "sqlite://",
            embedded_worker=True,
            api_key_usage_flush_seconds=0,
        )

    def test_a_cached_key_still_records_its_use(
        self, client: TestClient, cast: Cast, db: Session, user_lookups: list[str]
    ) -> None:
        created = client.post(
            f"{API}/api-keys", json={"name": "erp"}, headers=cast.headers(cast.ent_user)
        ).json()
        key = {"X-API-Key": created["key"]}
        assert client.get(f"{API}/users/me", headers=key).status_code == 200
        assert last_used(db, created["id"]) is not None
        # Forget the first use behind the ORM's back (the cache stays warm): only the cached
        # request can set it again.
        db.execute(text("UPDATE api_keys SET last_used_at = NULL WHERE id = :id"), created)
        lookups = len(user_lookups)
        assert client.get(f"{API}/users/me", headers=key).status_code == 200
        assert len(user_lookups) == lookups + 1  # read_me's own read; the caller came cached
        assert last_used(db, created["id"]) is not None


def last_used(db: Session, key_id: int) -> object:
    row = db.get(ApiKey, key_id)
    assert row is not None
    db.refresh(row)
    return row.last_used_at
