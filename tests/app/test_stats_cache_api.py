"""``/stats`` through its cache: one computation per TTL, scoped per caller's regions."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.settings import Settings
from tests.app.conftest import Cast
from tests.conftest import TEST_SECRET
from tests.factories import app_of, make_request


class TestStatsCache:
    def test_a_cached_summary_is_reused_until_it_goes_stale(
        self, client: TestClient, cast: Cast, db: Session, settings: Settings
    ) -> None:
        headers = cast.headers(cast.coordinator)
        first = client.get("/api/v1/stats", headers=headers).json()
        make_request(db, cast.ent, status="triaged")
        db.commit()
        again = client.get("/api/v1/stats", headers=headers).json()
        app_of(client).state.stats_cache.clear()
        fresh = client.get("/api/v1/stats", headers=headers).json()

        assert again == first
        assert fresh["total"]["funnel"]["submitted"] == first["total"]["funnel"]["submitted"] + 1

    def test_callers_with_other_regions_never_share_an_entry(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        make_request(db, cast.ent, status="triaged")
        db.commit()
        fujian = client.get("/api/v1/stats", headers=cast.headers(cast.coordinator)).json()
        henan = client.get("/api/v1/stats", headers=cast.headers(cast.other_coordinator)).json()

        assert fujian["scope"] == ["35"]
        assert henan["scope"] == ["41"]
        assert fujian["total"]["funnel"]["submitted"] >= 1
        assert henan["total"]["funnel"]["submitted"] == 0

    def test_each_page_of_groups_is_its_own_entry(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        make_request(db, cast.ent, category="financing", status="triaged")
        make_request(db, cast.ent, category="management", status="triaged")
        db.commit()
        headers = cast.headers(cast.coordinator)
        params = {"group_by": "category", "limit": 1}
        first = client.get("/api/v1/stats", params=params, headers=headers).json()
        cursor = first["next_cursor"]
        second = client.get("/api/v1/stats", params={**params, "cursor": cursor}, headers=headers)

        assert [g["key"] for g in first["groups"]] == ["financing"]
        assert [g["key"] for g in second.json()["groups"]] == ["management"]


@pytest.fixture
def settings() -> Settings:
    return Settings(
        environment="test",
        secret_key=TEST_SECRET,
        database_url="sqlite://",
        stats_cache_seconds=600,
    )
