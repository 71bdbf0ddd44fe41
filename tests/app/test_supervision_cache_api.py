"""``GET /supervision`` through its board cache: one read per TTL, scoped per caller's regions."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.settings import Settings
from tests.app.conftest import Cast
from tests.app.test_supervision_api import backdated_request
from tests.conftest import TEST_SECRET
from tests.factories import app_of, statements


def late_ids(board: dict[str, object]) -> list[int]:
    listed = board["overdue_requests"]
    assert isinstance(listed, dict)
    return [item["request_id"] for item in listed["items"]]


class TestBoardCache:
    def test_a_cached_board_is_reused_until_it_goes_stale(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        headers = cast.headers(cast.coordinator)
        first = backdated_request(db, cast, days=3)
        db.commit()
        before = client.get("/api/v1/supervision", headers=headers).json()
        second = backdated_request(db, cast, days=3)
        db.commit()
        again = client.get("/api/v1/supervision", headers=headers).json()
        app_of(client).state.board_pages.clear()
        fresh = client.get("/api/v1/supervision", headers=headers).json()

        assert again == before
        assert late_ids(before) == [first.id]
        assert late_ids(fresh) == [first.id, second.id]

    def test_a_warm_board_reads_nothing_but_the_caller(
        self, client: TestClient, cast: Cast, db: Session, engine: Engine
    ) -> None:
        backdated_request(db, cast, days=3)
        db.commit()
        headers = cast.headers(cast.coordinator)
        client.get("/api/v1/supervision", headers=headers)
        with statements(engine) as seen:
            client.get("/api/v1/supervision", headers=headers)

        reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
        assert [s for s in reads if "FROM users" not in s] == []

    @pytest.mark.parametrize("fujian_first", [True, False])
    def test_callers_of_other_regions_never_share_a_board(
        self, client: TestClient, cast: Cast, db: Session, fujian_first: bool
    ) -> None:
        late = backdated_request(db, cast, days=3)  # an enterprise of Fujian (35)
        db.commit()
        calls = {
            "fujian": lambda: client.get(
                "/api/v1/supervision", headers=cast.headers(cast.coordinator)
            ),
            "henan": lambda: client.get(
                "/api/v1/supervision", headers=cast.headers(cast.other_coordinator)
            ),
            "admin in henan": lambda: client.get(
                "/api/v1/supervision", params={"region": "41"}, headers=cast.headers(cast.admin)
            ),
            "admin": lambda: client.get("/api/v1/supervision", headers=cast.headers(cast.admin)),
        }
        order = list(calls) if fujian_first else list(reversed(calls))
        boards = {name: calls[name]().json() for name in order}

        assert late_ids(boards["fujian"]) == [late.id]
        assert late_ids(boards["admin"]) == [late.id]
        assert late_ids(boards["henan"]) == []
        assert late_ids(boards["admin in henan"]) == []

    def test_a_region_outside_the_callers_is_refused_even_when_cached(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        backdated_request(db, cast, days=3)
        db.commit()
        client.get("/api/v1/supervision", params={"region": "35"}, headers=cast.headers(cast.admin))
        refused = client.get(
            "/api/v1/supervision",
            params={"region": "35"},
            headers=cast.headers(cast.other_coordinator),
        )

        assert refused.status_code == 403

    def test_each_page_size_is_its_own_entry(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        late = [backdated_request(db, cast, days=3) for _ in range(2)]
        db.commit()
        headers = cast.headers(cast.coordinator)
        one = client.get("/api/v1/supervision", params={"limit": 1}, headers=headers).json()
        two = client.get("/api/v1/supervision", params={"limit": 2}, headers=headers).json()

        assert late_ids(one) == [late[0].id]
        assert late_ids(two) == [r.id for r in late]

    def test_the_cache_is_bounded(self, client: TestClient) -> None:
        boards = app_of(client).state.board_pages
        assert 0 < boards.max_entries <= 128


@pytest.fixture
def settings() -> Settings:
    return Settings(
        environment="test",
        secret_key=TEST_SECRET,
        database_url="sqlite://",
        stats_cache_seconds=0,
        board_cache_seconds=600,
    )
