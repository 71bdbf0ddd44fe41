"""``/stats`` through its cache: one computation per TTL, scoped per caller's regions."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.models import Assignment, AssignmentOrigin, AssignmentStatus
from app.settings import Settings
from tests.app.conftest import Cast
from tests.conftest import TEST_SECRET
from tests.factories import app_of, make_request, statements


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

    def test_pages_by_provider_share_the_cached_head(
        self, client: TestClient, cast: Cast, db: Session, engine: Engine
    ) -> None:
        """Walking the provider pages recomputes neither the total nor the group count: the
        next page is one statement, and its total is the first page's."""
        for provider in (cast.expert, cast.platform):
            request = make_request(db, cast.ent, status="matched")
            db.add(
                Assignment(
                    request_id=request.id,
                    provider_id=provider.id,
                    origin=AssignmentOrigin.MANUAL,
                    status=AssignmentStatus.OFFERED,
                    offered_at=utc_now(),
                )
            )
        db.commit()
        headers = cast.headers(cast.coordinator)
        params = {"group_by": "provider", "limit": 1}
        first = client.get("/api/v1/stats", params=params, headers=headers).json()
        make_request(db, cast.ent, status="triaged")
        db.commit()
        with statements(engine) as seen:
            second = client.get(
                "/api/v1/stats", params={**params, "cursor": first["next_cursor"]}, headers=headers
            ).json()

        assert [g["key"] for g in first["groups"] + second["groups"]] == [
            str(cast.expert.id),
            str(cast.platform.id),
        ]
        assert second["total"] == first["total"]
        assert second["total_groups"] == first["total_groups"] == 2
        stats_reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
        assert len([s for s in stats_reads if "FROM users" not in s]) == 1  # not the caller


@pytest.fixture
def settings() -> Settings:
    return Settings(
        environment="test",
        secret_key=TEST_SECRET,
        database_url="sqlite://",
        stats_cache_seconds=600,
    )
