"""Every list is paged the same way: walk all pages, nothing lost, nothing twice, total right.

The lists that were cut or unbounded (users, API keys, plans at 500, exclusions at 1,000,
notifications at 500, the supervision board) and the ones that were already paged.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.clock import today, utc_now
from app.common.credentials import api_key_digest, new_api_key
from app.models import (
    ApiKey,
    Assignment,
    AssignmentOrigin,
    AssignmentStatus,
    Category,
    Event,
    Exclusion,
    FollowUp,
    FollowUpKind,
    Notification,
    Plan,
    PlanStatus,
    ProviderConflict,
    Role,
)
from tests.app.conftest import Cast
from tests.app.test_supervision_api import offered
from tests.conftest import TEST_SECRET
from tests.factories import app_of, make_enterprise, make_provider, make_request, make_user

API = "/api/v1"
N = 7  # walked three at a time: pages of 3, 3 and 1


def walk(client: TestClient, url: str, headers: dict[str, str], key: str = "id") -> list[Any]:
    """Every item of a list, following ``next_cursor``; checks ``total`` when given."""
    seen: list[Any] = []
    path, _, query = url.partition("?")
    params: dict[str, Any] = dict(parse_qsl(query)) | {"limit": 3}
    totals = set()
    for _ in range(100):
        response = client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 3
        seen += [item[key] for item in page["items"]]
        totals.add(page.get("total"))
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert len(seen) == len(set(seen)), "an item came twice"
    (total,) = totals
    assert total in (None, len(seen))
    return seen


def _users(db: Session, cast: Cast) -> list[int]:
    extra = [make_user(db, Role.COORDINATOR, region_prefixes=["35"]).id for _ in range(N)]
    return sorted([u.id for u in cast.by_role().values()] + extra)


def _api_keys(db: Session, cast: Cast) -> list[int]:
    rows = []
    for n in range(N):
        key, prefix = new_api_key()
        rows.append(
            ApiKey(
                user_id=cast.coordinator.id,
                name=f"k{n}",
                prefix=prefix,
                key_digest=api_key_digest(key, secret_key=TEST_SECRET),
                created_at=utc_now(),
            )
        )
    db.add_all(rows)
    db.flush()
    return [r.id for r in rows]


def _plans(db: Session, cast: Cast) -> list[int]:
    plans = [Plan(enterprise_id=make_enterprise(db).id, status=PlanStatus.ACTIVE) for _ in range(N)]
    db.add_all(plans)
    db.flush()
    return [p.id for p in plans]


def _exclusions(db: Session, cast: Cast) -> list[int]:
    rows = [
        Exclusion(provider_id=make_provider(db).id, enterprise_id=cast.ent.id, created_at=utc_now())
        for _ in range(N)
    ]
    db.add_all(rows)
    db.flush()
    return [r.id for r in rows]


def _notifications(db: Session, cast: Cast) -> list[int]:
    rows = [
        Notification(
            recipient_user_id=cast.coordinator.id,
            kind="reminder",
            subject=f"第{n}条",
            dedupe_key=f"page-{n}",
            created_at=utc_now(),
        )
        for n in range(N)
    ]
    db.add_all(rows)
    db.flush()
    return sorted((r.id for r in rows), reverse=True)  # newest first


def _events(db: Session, cast: Cast) -> list[int]:
    rows = [
        Event(action="test.paged", entity_type="test", region_code="350582", created_at=utc_now())
        for _ in range(N)
    ]
    db.add_all(rows)
    db.flush()
    return [r.id for r in rows]


def _overdue_offers(db: Session, cast: Cast) -> list[int]:
    return [
        offered(db, make_request(db, cast.ent), cast.expert.id, days_ago=5).request_id
        for _ in range(N)
    ]


def _paused_work(db: Session, cast: Cast) -> list[int]:
    """Accepted work of a provider paused since yesterday: it stays on the board, paged."""
    ids = []
    for _ in range(N):
        request = make_request(db, cast.ent, status="in_progress")
        assignment = Assignment(
            request_id=request.id,
            provider_id=cast.expert.id,
            origin=AssignmentOrigin.MANUAL,
            status=AssignmentStatus.ACCEPTED,
            offered_at=utc_now(),
        )
        db.add(assignment)
        db.flush()
        ids.append(assignment.id)
    cast.expert.paused_from_date = today() - timedelta(days=1)
    db.flush()
    return ids


LISTS: dict[str, tuple[str, Callable[[Session, Cast], list[int]], str, str]] = {
    # name: (url, make the rows -> their ids in list order, who asks, item key)
    "users": ("/users?role=coordinator", _users, "admin", "id"),
    "api-keys": ("/api-keys", _api_keys, "coordinator", "id"),
    "plans": ("/plans", _plans, "admin", "id"),
    "exclusions": ("/exclusions", _exclusions, "coordinator", "id"),
    "notifications": ("/notifications", _notifications, "coordinator", "id"),
    "events": ("/events?action=test.paged", _events, "admin", "id"),
    "overdue offers": ("/supervision/overdue/offers", _overdue_offers, "coordinator", "request_id"),
    "paused work": ("/supervision/paused-work", _paused_work, "coordinator", "assignment_id"),
}


@pytest.mark.parametrize("name", sorted(LISTS))
def test_walking_every_page_gives_each_item_once(
    client: TestClient, cast: Cast, db: Session, name: str
) -> None:
    url, make, who, key = LISTS[name]
    expected = make(db, cast)
    db.commit()
    headers = cast.headers(cast.by_role()[who])
    seen = walk(client, API + url, headers, key)
    if name == "users":
        coordinators = {cast.coordinator.id, cast.other_coordinator.id}
        assert set(seen) == {i for i in expected if i in coordinators} | set(expected[-N:])
    else:
        assert seen == expected


def test_the_board_shows_first_pages_with_totals(
    client: TestClient, cast: Cast, db: Session
) -> None:
    _overdue_offers(db, cast)
    db.commit()
    board = client.get(
        f"{API}/supervision", params={"limit": 3}, headers=cast.headers(cast.coordinator)
    ).json()
    offers = board["overdue_offers"]
    assert len(offers["items"]) == 3
    assert offers["total"] == N
    assert offers["next_cursor"] is not None


def test_the_board_pages_paused_work_with_its_total(
    client: TestClient, cast: Cast, db: Session
) -> None:
    expected = _paused_work(db, cast)
    db.commit()
    board = client.get(
        f"{API}/supervision", params={"limit": 3}, headers=cast.headers(cast.coordinator)
    ).json()
    paused = board["paused_work"]
    assert [w["assignment_id"] for w in paused["items"]] == expected[:3]
    assert paused["total"] == N
    following = client.get(
        f"{API}/supervision/paused-work",
        params={"limit": 3, "cursor": paused["next_cursor"]},
        headers=cast.headers(cast.coordinator),
    ).json()
    assert [w["assignment_id"] for w in following["items"]] == expected[3:6]
    elsewhere = client.get(
        f"{API}/supervision/paused-work", headers=cast.headers(cast.other_coordinator)
    ).json()
    assert (elsewhere["items"], elsewhere["total"]) == ([], 0)
    for outsider in (cast.ent_user, cast.expert_user):
        denied = client.get(f"{API}/supervision/paused-work", headers=cast.headers(outsider))
        assert denied.status_code == 403


def test_the_page_size_is_capped(client: TestClient, cast: Cast, db: Session) -> None:
    cap = app_of(client).state.settings.page_limit_max
    for _ in range(cap + 5):
        make_user(db, Role.ADMIN)
    db.commit()
    page = client.get(
        f"{API}/users", params={"limit": cap * 10}, headers=cast.headers(cast.admin)
    ).json()
    assert len(page["items"]) == cap
    assert page["total"] == cap + 5 + len(cast.by_role())


class TestCountedTotalsAreCapped:
    """A list's total counts up to ``list_count_cap`` and then says it is a lower bound: the
    audit log grows without end, and its total is counted on every page."""

    @pytest.fixture
    def cap(self, client: TestClient) -> int:
        state = app_of(client).state
        state.settings = state.settings.model_copy(update={"list_count_cap": 4})
        return 4

    def _events(self, client: TestClient, cast: Cast, **params: Any) -> dict[str, Any]:
        url = f"{API}/events"
        query = {"action": "test.paged", **params}
        response = client.get(url, params=query, headers=cast.headers(cast.admin))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def test_past_the_cap_the_total_is_a_lower_bound(
        self, client: TestClient, cast: Cast, db: Session, cap: int
    ) -> None:
        ids = _events(db, cast)
        db.commit()
        page = self._events(client, cast, limit=2)
        assert (page["total"], page["total_capped"]) == (cap, True)
        # Every page says the same, and the pages still hold every event once.
        seen, params = [], {"limit": 2}
        while True:
            page = self._events(client, cast, **params)
            assert (page["total"], page["total_capped"]) == (cap, True)
            seen += [item["id"] for item in page["items"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert sorted(seen) == sorted(ids)

    def test_up_to_the_cap_the_total_is_exact(
        self, client: TestClient, cast: Cast, db: Session, cap: int
    ) -> None:
        for event in db.scalars(select(Event).where(Event.id.in_(_events(db, cast)[cap:]))):
            db.delete(event)
        db.commit()
        page = self._events(client, cast, limit=2)
        assert (page["total"], page["total_capped"]) == (cap, False)

    def test_a_filter_counts_its_own_rows(
        self, client: TestClient, cast: Cast, db: Session, cap: int
    ) -> None:
        ids = _events(db, cast)
        for event in db.scalars(select(Event).where(Event.id.in_(ids[:2]))):
            event.entity_id = 42
        db.commit()
        page = self._events(client, cast, entity_type="test", entity_id=42)
        assert (page["total"], page["total_capped"]) == (2, False)

    def test_other_counted_lists_are_capped_alike(
        self, client: TestClient, cast: Cast, db: Session, cap: int
    ) -> None:
        for _ in range(N):
            make_user(db, Role.ADMIN)
        db.commit()
        page = client.get(f"{API}/users", headers=cast.headers(cast.admin)).json()
        assert (page["total"], page["total_capped"]) == (cap, True)
        assert len(page["items"]) == N + len(cast.by_role())


class TestListsThatWereWhole:
    """Lists that answered every row in one body: now keyset pages with totals."""

    def test_events_carry_their_total(self, client: TestClient, cast: Cast, db: Session) -> None:
        _events(db, cast)
        db.commit()
        page = client.get(
            f"{API}/events",
            params={"action": "test.paged", "limit": 2},
            headers=cast.headers(cast.admin),
        ).json()
        assert page["total"] == N

    def test_follow_ups(self, client: TestClient, cast: Cast, db: Session) -> None:
        plan = Plan(enterprise_id=cast.ent.id, status=PlanStatus.ACTIVE)
        db.add(plan)
        db.flush()
        rows = [
            FollowUp(
                plan_id=plan.id,
                kind=FollowUpKind.CALL,
                occurred_at=utc_now(),
                notes=f"第{n}次",
                created_at=utc_now(),
            )
            for n in range(N)
        ]
        db.add_all(rows)
        db.commit()
        url = f"{API}/plans/{plan.id}/follow-ups"
        assert walk(client, url, cast.headers(cast.ent_user)) == [r.id for r in rows]

    def test_provider_conflicts(self, client: TestClient, cast: Cast, db: Session) -> None:
        enterprises = [make_enterprise(db).id for _ in range(N)]
        db.add_all(
            ProviderConflict(provider_id=cast.expert.id, enterprise_id=e, created_at=utc_now())
            for e in enterprises
        )
        db.commit()
        url = f"{API}/providers/{cast.expert.id}/conflicts"
        seen = walk(client, url, cast.headers(cast.expert_user), key="enterprise_id")
        assert seen == sorted(enterprises)

    def test_categories_page_by_key(self, client: TestClient, cast: Cast, db: Session) -> None:
        db.add_all(Category(key=f"zz_{n}", name_zh=f"类{n}", name_en=f"c{n}") for n in range(N))
        db.commit()
        seen = walk(client, f"{API}/categories", cast.headers(cast.expert_user), key="key")
        assert seen == sorted(db.scalars(select(Category.key)))
        assert seen[-N:] == [f"zz_{n}" for n in range(N)]


@pytest.mark.parametrize("url", [f"{API}/categories", f"{API}/requests"])
@pytest.mark.parametrize("cursor", ["中文", "a:b", "aWQ6eA"])  # aWQ6eA = "id:x"
def test_a_made_up_cursor_is_a_422_on_cursor(
    client: TestClient, cast: Cast, url: str, cursor: str
) -> None:
    response = client.get(url, params={"cursor": cursor}, headers=cast.headers(cast.admin))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "cursor" in response.text


# Lists whose page is their own query model (``PageInQuery``) rather than a dependency.
PAGE_QUERY_LISTS = {
    "/api-keys": "coordinator",
    "/notifications": "coordinator",
    "/glossary": "coordinator",
    "/milestone-templates": "enterprise",
    "/webhooks": "admin",
}


@pytest.mark.parametrize("path", sorted(PAGE_QUERY_LISTS))
def test_a_page_query_list_refuses_a_made_up_cursor_or_limit_and_caps_the_size(
    client: TestClient, cast: Cast, path: str
) -> None:
    headers = cast.headers(cast.by_role()[PAGE_QUERY_LISTS[path]])
    made_up = client.get(API + path, params={"cursor": "bm90LWFuLWlk"}, headers=headers)
    assert (made_up.status_code, made_up.json()["field"]) == (422, "cursor")
    too_small = client.get(API + path, params={"limit": 0}, headers=headers)
    assert too_small.status_code == 422
    assert "limit" in too_small.text
    assert client.get(API + path, params={"limit": 10**6}, headers=headers).status_code == 200
