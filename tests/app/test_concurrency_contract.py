"""The concurrency contract on every route: PATCH needs If-Match (428 without, 412 when stale,
never 409), and creates honour Idempotency-Key (replay, 422 on another body, 24 h life)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.common.idempotency import KEY_LIFETIME, purge_expired
from app.models import Category, Exclusion, GlossaryEntry, IdempotencyKey, table_of
from tests.app.conftest import Cast
from tests.factories import make_policy, make_request

API = "/api/v1"
# Creates that cannot replay: sign-ups have no caller to key on, and a new API key's secret
# is never stored, so a replay could not show it.
NOT_REPLAYABLE = {
    "/api/v1/auth/register/enterprise",
    "/api/v1/auth/register/provider",
    "/api/v1/api-keys",
}


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    document = app.openapi()
    return [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def _headers_of(operation: dict[str, Any]) -> set[str]:
    return {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}


def test_every_patch_takes_if_match_and_declares_412_and_428(app: FastAPI) -> None:
    patches = [(path, op) for method, path, op in _operations(app) if method == "patch"]
    assert len(patches) >= 8
    for path, operation in patches:
        assert "if-match" in _headers_of(operation), path
        assert {"412", "428"} <= set(operation["responses"]), path


def test_every_create_takes_an_idempotency_key(app: FastAPI) -> None:
    creates = [
        (path, op)
        for method, path, op in _operations(app)
        if method == "post" and {"201", "202"} & set(op["responses"])
    ]
    assert len(creates) >= 14
    for path, operation in creates:
        if path not in NOT_REPLAYABLE:
            assert "idempotency-key" in _headers_of(operation), path


Target = Callable[[Cast, Session], tuple[str, dict[str, Any]]]
TARGETS: dict[str, Target] = {
    "enterprise": lambda c, db: (f"{API}/enterprises/{c.ent.id}", {"headcount": 150}),
    "provider": lambda c, db: (f"{API}/providers/{c.expert.id}", {"capacity": 4}),
    "request": lambda c, db: (f"{API}/requests/{make_request(db, c.ent).id}", {"urgency": 5}),
    "policy": lambda c, db: (f"{API}/policies/{make_policy(db).id}", {"summary": "新"}),
    "user": lambda c, db: (f"{API}/users/{c.coordinator.id}", {"full_name": "新名字"}),
    "category": lambda c, db: (f"{API}/categories/financing", {"route_days": 2}),
    "glossary": lambda c, db: (f"{API}/glossary/{_glossary_entry(db)}", {"zh": ["压款"]}),
}


def _glossary_entry(db: Session) -> int:
    entry = GlossaryEntry(concept="late_payment", zh=["押款"], en=[])
    db.add(entry)
    db.flush()
    return entry.id


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_patch_without_if_match_is_428_and_stale_is_412(
    client: TestClient, cast: Cast, db: Session, kind: str
) -> None:
    url, body = TARGETS[kind](cast, db)
    db.commit()
    headers = cast.headers(cast.admin)
    missing = client.patch(url, json=body, headers=headers)
    assert missing.status_code == 428, missing.text
    assert missing.json()["field"] == "If-Match"
    first = client.patch(url, json=body, headers=headers | {"If-Match": '"1"'})
    assert first.status_code == 200, first.text
    assert first.headers["etag"] == 'W/"2"'
    stale = client.patch(url, json=body, headers=headers | {"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2
    fresh = client.patch(url, json=body, headers=headers | {"If-Match": first.headers["etag"]})
    assert fresh.status_code == 200


class TestIdempotency:
    def _forbid(self, client: TestClient, cast: Cast, key: str, reason: str = "利益冲突") -> Any:
        return client.post(
            f"{API}/exclusions",
            json={"request_id": self.request_id, "provider_id": cast.expert.id, "reason": reason},
            headers=cast.headers(cast.coordinator) | {"Idempotency-Key": key},
        )

    @pytest.fixture(autouse=True)
    def _request(self, cast: Cast, db: Session) -> None:
        self.request_id = make_request(db, cast.ent, status="triaged").id
        db.commit()

    def test_same_key_same_body_replays_without_a_second_row(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        first = self._forbid(client, cast, "k-1")
        again = self._forbid(client, cast, "k-1")
        assert first.status_code == again.status_code == 201, first.text
        assert first.json() == again.json()
        assert db.scalar(select(func.count()).select_from(Exclusion)) == 1

    def test_same_key_other_body_is_422(self, client: TestClient, cast: Cast) -> None:
        assert self._forbid(client, cast, "k-2").status_code == 201
        other = self._forbid(client, cast, "k-2", reason="另一个理由")
        assert other.status_code == 422
        assert other.json()["field"] == "Idempotency-Key"

    def test_an_expired_key_is_a_new_request(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        assert self._forbid(client, cast, "k-3").status_code == 201
        db.execute(
            table_of(IdempotencyKey).update().values(created_at=utc_now() - timedelta(hours=25))
        )
        db.commit()
        again = self._forbid(client, cast, "k-3")
        assert again.status_code == 409  # not a replay: the pair is already forbidden

    def test_purge_deletes_exactly_the_expired_keys(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        for key in ("old-1", "old-2", "new-1"):
            client.post(
                f"{API}/categories",
                json={"key": f"cat_{key.replace('-', '_')}", "name_zh": "类", "name_en": "C"},
                headers=cast.headers(cast.admin) | {"Idempotency-Key": key},
            )
        old = utc_now() - KEY_LIFETIME - timedelta(minutes=1)
        db.execute(
            table_of(IdempotencyKey)
            .update()
            .where(IdempotencyKey.key.like("old-%"))
            .values(created_at=old)
        )
        assert purge_expired(db) == 2
        assert db.scalars(select(IdempotencyKey.key)).all() == ["new-1"]
        assert db.scalar(select(func.count()).select_from(Category)) == 16
