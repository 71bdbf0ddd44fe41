"""``GET /stats`` over a small history built through the API, whose figures are known by hand.

The history (Jinjiang enterprise, coordinator for "35"), hours = age of the request:
- R1 financing, 10 h: offered to the expert, accepted, visited, completed, rated 5 satisfied;
- R2 financing, 20 h: the expert declines, the re-match offers it to the platform, which accepts;
- R3 digital_transformation, 60 h: the platform accepts and completes, rated 2 unsatisfied;
  the re-match offers it to the expert, who has not answered;
- R4 financing, 5 h: withdrawn before any offer;
- R5 management, 30 h: declared unresolvable before any offer;
- R6 financing, 1 h, Zhengzhou enterprise (outside "35"): submitted only.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.models import Assignment, AssignmentStatus, Enterprise, HelpRequest, Provider
from tests.app.conftest import Cast
from tests.factories import make_request, rematch_declined, statements

URL = "/api/v1/stats"
A_URL = "/api/v1/assignments"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass
class History:
    r1: int
    r2: int
    r3: int


def _make(db: Session, enterprise: Enterprise, category: str, hours: float) -> HelpRequest:
    return make_request(
        db,
        enterprise,
        category=category,
        status="triaged",
        created_at=utc_now() - timedelta(hours=hours),
    )


def _post(client: TestClient, cast: Cast, path: str, user: Any, body: Any = None) -> Any:
    r = client.post(path, json=body, headers=cast.headers(user))
    assert r.status_code in (200, 201), r.text
    return r.json()


def _offer(client: TestClient, cast: Cast, request_id: int, provider: Provider) -> int:
    body = {"request_id": request_id, "provider_id": provider.id}
    return int(_post(client, cast, A_URL, cast.coordinator, body)["id"])


def _open_offer(db: Session, request_id: int) -> Assignment:
    db.expire_all()
    return db.scalars(
        select(Assignment).where(
            Assignment.request_id == request_id, Assignment.status == AssignmentStatus.OFFERED
        )
    ).one()


def _resolve_r1(client: TestClient, cast: Cast, request_id: int) -> None:
    a = _offer(client, cast, request_id, cast.expert)
    _post(client, cast, f"{A_URL}/{a}/accept", cast.expert_user)
    plan_id = client.get(
        f"/api/v1/requests/{request_id}", headers=cast.headers(cast.coordinator)
    ).json()["plan_id"]
    visit = {"assignment_id": a, "kind": "visit", "notes": "上门调研", "progress": 50}
    _post(client, cast, f"/api/v1/plans/{plan_id}/follow-ups", cast.expert_user, visit)
    _post(client, cast, f"{A_URL}/{a}/complete", cast.expert_user)
    _post(client, cast, f"{A_URL}/{a}/feedback", cast.ent_user, {"rating": 5, "satisfied": True})


def _decline_then_reoffer_r2(client: TestClient, cast: Cast, db: Session, request_id: int) -> None:
    a = _offer(client, cast, request_id, cast.expert)
    _post(client, cast, f"{A_URL}/{a}/decline", cast.expert_user, {"reason_code": "no_capacity"})
    rematch_declined(db)
    second = _open_offer(db, request_id)
    assert second.provider_id == cast.platform.id
    _post(client, cast, f"{A_URL}/{second.id}/accept", cast.platform_user)


def _unsatisfied_r3(client: TestClient, cast: Cast, db: Session, request_id: int) -> None:
    a = _offer(client, cast, request_id, cast.platform)
    _post(client, cast, f"{A_URL}/{a}/accept", cast.platform_user)
    _post(client, cast, f"{A_URL}/{a}/complete", cast.platform_user)
    _post(client, cast, f"{A_URL}/{a}/feedback", cast.ent_user, {"rating": 2, "satisfied": False})
    rematch_declined(db)
    assert _open_offer(db, request_id).provider_id == cast.expert.id


@pytest.fixture
def history(client: TestClient, cast: Cast, db: Session) -> History:
    r1 = _make(db, cast.ent, "financing", 10)
    r2 = _make(db, cast.ent, "financing", 20)
    r3 = _make(db, cast.ent, "digital_transformation", 60)
    r4 = _make(db, cast.ent, "financing", 5)
    r5 = _make(db, cast.ent, "management", 30)
    _make(db, cast.other_ent, "financing", 1)
    db.commit()
    _resolve_r1(client, cast, r1.id)
    _decline_then_reoffer_r2(client, cast, db, r2.id)
    _unsatisfied_r3(client, cast, db, r3.id)
    _post(client, cast, f"/api/v1/requests/{r4.id}/withdraw", cast.ent_user)
    _post(client, cast, f"/api/v1/requests/{r5.id}/unresolvable", cast.coordinator)
    return History(r1=r1.id, r2=r2.id, r3=r3.id)


def stats(client: TestClient, cast: Cast, user: Any, **params: Any) -> dict[str, Any]:
    r = client.get(URL, params=params, headers=cast.headers(user))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def funnel(block: dict[str, Any]) -> list[int]:
    f = block["funnel"]
    return [f["submitted"], f["matched"], f["accepted"], f["first_follow_up"], f["resolved"]]


def by_key(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["key"]: g for g in body["groups"]}


class TestTotal:
    def test_funnel_counts_each_step_once_per_request(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        total = stats(client, cast, cast.coordinator)["total"]
        assert funnel(total) == [5, 3, 3, 1, 1]

    def test_acceptance_counts_answers_not_pending_offers(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        rates = stats(client, cast, cast.coordinator)["total"]["rates"]
        assert rates["offers_answered"] == 4
        assert rates["offers_accepted"] == 3
        assert rates["acceptance_rate"] == 0.75

    def test_resolution_rate_leaves_withdrawn_requests_out(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        rates = stats(client, cast, cast.coordinator)["total"]["rates"]
        assert rates["settled"] == 2
        assert rates["resolution_rate"] == 0.5

    def test_satisfaction_averages_the_ratings(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        satisfaction = stats(client, cast, cast.coordinator)["total"]["rates"]["satisfaction"]
        assert satisfaction == {"feedback": 2, "mean_rating": 3.5, "satisfied_share": 0.5}

    def test_time_to_match_is_median_and_mean_of_first_offers(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        ttm = stats(client, cast, cast.coordinator)["total"]["time_to_match_hours"]
        assert ttm["count"] == 3
        assert ttm["median"] == pytest.approx(20, abs=0.02)
        assert ttm["mean"] == pytest.approx(30, abs=0.02)

    def test_time_to_resolution_covers_resolved_requests_only(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        ttr = stats(client, cast, cast.coordinator)["total"]["time_to_resolution_hours"]
        assert ttr["count"] == 1
        assert ttr["median"] == pytest.approx(10, abs=0.02)

    def test_provider_load_counts_open_assignments_of_the_regions_supply(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        load = stats(client, cast, cast.coordinator)["total"]["load"]
        assert load["providers"] == 2
        assert load["capacity"] == 23
        assert load["open_assignments"] == 2
        assert load["utilisation"] == round(2 / 23, 4)


class TestGroups:
    def test_by_category(self, client: TestClient, cast: Cast, history: History) -> None:
        groups = by_key(stats(client, cast, cast.coordinator, group_by="category"))
        assert list(groups) == ["digital_transformation", "financing", "management"]
        financing = groups["financing"]
        assert funnel(financing) == [3, 2, 2, 1, 1]
        assert financing["rates"]["acceptance_rate"] == round(2 / 3, 4)
        assert financing["rates"]["satisfaction"]["mean_rating"] == 5.0
        assert financing["load"] is None

    def test_a_group_without_denominators_has_null_rates(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        management = by_key(stats(client, cast, cast.coordinator, group_by="category"))[
            "management"
        ]
        assert funnel(management) == [1, 0, 0, 0, 0]
        assert management["rates"]["acceptance_rate"] is None
        assert management["rates"]["resolution_rate"] == 0.0
        assert management["rates"]["satisfaction"]["mean_rating"] is None
        assert management["time_to_match_hours"] == {"count": 0, "median": None, "mean": None}

    def test_by_provider_credits_each_provider_with_its_own_work(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        groups = by_key(stats(client, cast, cast.coordinator, group_by="provider"))
        expert, platform = groups[str(cast.expert.id)], groups[str(cast.platform.id)]
        assert list(groups) == [str(cast.expert.id), str(cast.platform.id)]
        assert expert["label"] == cast.expert.name
        assert funnel(expert) == [3, 3, 1, 1, 1]
        assert expert["rates"]["acceptance_rate"] == 0.5
        assert funnel(platform) == [2, 2, 2, 0, 0]
        assert platform["rates"]["acceptance_rate"] == 1.0
        assert platform["rates"]["satisfaction"]["mean_rating"] == 2.0
        assert platform["rates"]["resolution_rate"] is None

    def test_by_provider_no_credit_for_a_resolution_after_unsatisfying_work(
        self, client: TestClient, cast: Cast, db: Session, history: History
    ) -> None:
        second = _open_offer(db, history.r3).id
        _post(client, cast, f"{A_URL}/{second}/accept", cast.expert_user)
        _post(client, cast, f"{A_URL}/{second}/complete", cast.expert_user)
        _post(
            client,
            cast,
            f"{A_URL}/{second}/feedback",
            cast.ent_user,
            {"rating": 4, "satisfied": True},
        )
        groups = by_key(stats(client, cast, cast.coordinator, group_by="provider"))
        expert, platform = groups[str(cast.expert.id)], groups[str(cast.platform.id)]
        assert funnel(expert) == [3, 3, 2, 1, 2]
        assert expert["rates"]["resolution_rate"] == 1.0
        assert funnel(platform) == [2, 2, 2, 0, 0]
        assert platform["rates"]["settled"] == 1
        assert platform["rates"]["resolution_rate"] == 0.0

    def test_by_provider_shows_each_providers_load(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        groups = by_key(stats(client, cast, cast.coordinator, group_by="provider"))
        assert groups[str(cast.expert.id)]["load"] == {
            "providers": 1,
            "capacity": 3,
            "open_assignments": 1,
            "utilisation": 0.3333,
        }
        assert groups[str(cast.platform.id)]["load"]["utilisation"] == 0.05

    def test_by_provider_keeps_the_request_level_total(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        total = stats(client, cast, cast.coordinator, group_by="provider")["total"]
        assert funnel(total) == [5, 3, 3, 1, 1]
        assert total["rates"]["offers_answered"] == 4

    def test_by_region_uses_the_city_code(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        groups = by_key(stats(client, cast, cast.admin, group_by="region"))
        assert {key: g["funnel"]["submitted"] for key, g in groups.items()} == {
            "3505": 5,
            "4101": 1,
        }

    def test_by_tier(self, client: TestClient, cast: Cast, history: History) -> None:
        groups = by_key(stats(client, cast, cast.coordinator, group_by="tier"))
        assert list(groups) == [cast.ent.tier.value]


def every_page(
    client: TestClient, cast: Cast, user: Any, limit: int, **params: Any
) -> list[dict[str, Any]]:
    """Follow ``next_cursor`` to the end (bounded, so a cursor that loops fails the test)."""
    pages = [stats(client, cast, user, limit=limit, **params)]
    while pages[-1]["next_cursor"] is not None and len(pages) < 20:
        pages.append(
            stats(client, cast, user, limit=limit, cursor=pages[-1]["next_cursor"], **params)
        )
    return pages


class TestPages:
    @pytest.mark.parametrize(
        ("who", "group_by", "groups"),
        [
            ("coordinator", "provider", 2),
            ("admin", "region", 2),
            ("coordinator", "category", 3),
        ],
    )
    def test_pages_of_one_concatenate_to_the_whole(
        self, client: TestClient, cast: Cast, history: History, who: str, group_by: str, groups: int
    ) -> None:
        user = cast.by_role()[who]
        whole = stats(client, cast, user, group_by=group_by)
        pages = every_page(client, cast, user, 1, group_by=group_by)
        assert len(pages) == groups
        assert [g for page in pages for g in page["groups"]] == whole["groups"]
        assert {page["total_groups"] for page in pages} == {groups}
        assert all(page["total"] == whole["total"] for page in pages)
        assert whole["next_cursor"] is None
        assert whole["total_groups"] == len(whole["groups"]) == groups

    def test_ungrouped_has_no_groups_to_count(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        body = stats(client, cast, cast.coordinator, limit=1)
        assert (body["groups"], body["next_cursor"], body["total_groups"]) == ([], None, None)

    def test_limit_is_capped_by_the_server(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        body = stats(client, cast, cast.coordinator, group_by="provider", limit=10**6)
        assert len(body["groups"]) == body["total_groups"] == 2

    def test_a_cursor_never_widens_the_scope(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        """A coordinator of "41" replaying a page cursor of a coordinator of "35" gets their
        own (empty) provider groups, not the rest of the other's."""
        cursor = stats(client, cast, cast.coordinator, group_by="provider", limit=1)["next_cursor"]
        body = stats(client, cast, cast.other_coordinator, group_by="provider", cursor=cursor)
        assert (body["groups"], body["total_groups"], body["scope"]) == ([], 0, ["41"])
        region = stats(client, cast, cast.coordinator, group_by="region", limit=10)
        assert [g["key"] for g in region["groups"]] == ["3505"]
        assert region["total_groups"] == 1

    def test_a_cursor_past_the_last_group_is_an_empty_last_page(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        """A well-formed key that is no group (or a tier that does not exist) is a position
        in key order, not an error."""
        for group_by, cursor in (("tier", "key:zzz"), ("provider", "id:999999999")):
            token = base64.urlsafe_b64encode(cursor.encode()).decode()
            body = stats(client, cast, cast.coordinator, group_by=group_by, cursor=token)
            assert body["groups"] == []
            assert body["next_cursor"] is None
            assert body["total_groups"] == (1 if group_by == "tier" else 2)
            assert body["total"]["funnel"]["submitted"] == 5

    @pytest.mark.parametrize(
        "params",
        [
            {"group_by": "provider", "cursor": "not a cursor!"},
            {"group_by": "provider", "cursor": "a2V5OjM1MDU"},  # key:3505, a region cursor
            {"group_by": "region", "cursor": "aWQ6Nw"},  # id:7, a provider cursor
            {"group_by": "provider", "cursor": "aWQ6eA"},  # id:x
            {"cursor": "aWQ6Nw"},  # no group_by: nothing to page
            {"group_by": "category", "cursor": "x" * 101},
            {"group_by": "category", "limit": 0},
        ],
    )
    def test_a_bad_cursor_or_limit_is_a_422_naming_it(
        self, client: TestClient, cast: Cast, params: dict[str, Any]
    ) -> None:
        r = client.get(URL, params=params, headers=cast.headers(cast.coordinator))
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["field"] == ("limit" if "limit" in params else "cursor")


class TestFilters:
    def test_since_keeps_requests_created_in_the_window(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        since = (utc_now() - timedelta(hours=25)).isoformat()
        total = stats(client, cast, cast.coordinator, since=since)["total"]
        assert funnel(total) == [3, 2, 2, 1, 1]

    def test_until_keeps_older_requests(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        until = (utc_now() - timedelta(hours=25)).isoformat()
        total = stats(client, cast, cast.coordinator, until=until)["total"]
        assert total["funnel"]["submitted"] == 2
        assert total["rates"]["satisfaction"]["mean_rating"] == 2.0

    def test_category_also_narrows_the_supply(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        total = stats(client, cast, cast.coordinator, category="management")["total"]
        assert total["funnel"]["submitted"] == 1
        assert total["load"]["providers"] == 0
        assert total["load"]["utilisation"] is None

    def test_tier_without_requests_gives_zeros(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        total = stats(client, cast, cast.coordinator, tier="champion")["total"]
        assert funnel(total) == [0, 0, 0, 0, 0]

    def test_since_after_until_is_refused(self, client: TestClient, cast: Cast) -> None:
        now = utc_now()
        r = client.get(
            URL,
            params={"since": now.isoformat(), "until": (now - timedelta(days=1)).isoformat()},
            headers=cast.headers(cast.coordinator),
        )
        assert r.status_code == 422
        assert r.json()["field"] == "until"


class TestScope:
    def test_coordinator_sees_only_their_regions(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        body = stats(client, cast, cast.other_coordinator, group_by="provider")
        assert body["scope"] == ["41"]
        assert funnel(body["total"]) == [1, 0, 0, 0, 0]
        assert body["total"]["rates"]["satisfaction"]["feedback"] == 0
        assert body["total"]["load"]["providers"] == 0
        assert body["groups"] == []

    def test_admin_sees_everything(self, client: TestClient, cast: Cast, history: History) -> None:
        body = stats(client, cast, cast.admin)
        assert body["scope"] is None
        assert body["total"]["funnel"]["submitted"] == 6

    def test_a_narrower_region_inside_ones_own_is_allowed(
        self, client: TestClient, cast: Cast, history: History
    ) -> None:
        body = stats(client, cast, cast.coordinator, region="3505")
        assert body["scope"] == ["3505"]
        assert body["total"]["funnel"]["submitted"] == 5

    def test_a_region_outside_ones_own_is_forbidden(self, client: TestClient, cast: Cast) -> None:
        r = client.get(URL, params={"region": "41"}, headers=cast.headers(cast.coordinator))
        assert r.status_code == 403
        assert r.json()["field"] == "region"

    @pytest.mark.parametrize("role", ["enterprise", "expert", "platform"])
    def test_enterprises_and_providers_are_forbidden(
        self, client: TestClient, cast: Cast, role: str
    ) -> None:
        r = client.get(URL, headers=cast.headers(cast.by_role()[role]))
        assert r.status_code == 403

    def test_anonymous_callers_are_unauthorised(self, client: TestClient) -> None:
        assert client.get(URL).status_code == 401


class TestValidation:
    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"group_by": "enterprise"}, "group_by"),
            ({"region": "9"}, "region"),
            ({"category": "Not A Key"}, "category"),
            ({"since": "0001-01-01T00:00:00+01:00"}, "since"),
        ],
    )
    def test_bad_parameters_are_422(
        self, client: TestClient, cast: Cast, params: dict[str, str], field: str
    ) -> None:
        r = client.get(URL, params=params, headers=cast.headers(cast.admin))
        assert r.status_code == 422
        assert r.json()["field"] == field


def test_query_count_does_not_grow_with_the_data(
    client: TestClient, cast: Cast, db: Session, engine: Engine, history: History
) -> None:
    """One query per figure family, never one per row: more requests, same statements.

    The caller's own look-up is left out: the principal cache answers it for a few seconds,
    so whether it runs depends on how long the offers in between took, not on the data."""

    def selects() -> int:
        with statements(engine) as seen:
            stats(client, cast, cast.admin, group_by="provider")
        reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
        return sum("FROM users" not in s for s in reads)

    before = selects()
    for hours in range(12):
        _offer(client, cast, _make(db, cast.ent, "financing", hours + 1).id, cast.platform)
    db.commit()
    assert selects() == before
    assert before <= 6


def test_any_query_gets_a_documented_answer(app: FastAPI, cast: Cast, history: History) -> None:
    """Fuzz the query string from our own OpenAPI document: never a 500, always the schema."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operation = schema["/api/v1/stats"]["GET"]
    headers = cast.headers(cast.coordinator)

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case: schemathesis.Case[schemathesis.APIOperation[Any, Any, Any, Any]]) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()
