from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.app.conftest import Cast

URL = "/api/v1/providers"


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "kind": "expert",
        "name": "陈律师",
        "skills": {"legal_ip": 3},
        "regions": ["3505"],
        "home_region_code": "350502",
        "capacity": 2,
    } | overrides


class TestListAndRead:
    @pytest.mark.parametrize(
        ("role", "sees"),
        [
            ("admin", {"expert", "platform"}),
            ("coordinator", {"expert", "platform"}),
            ("other_coordinator", {"expert", "platform"}),
            ("expert", {"expert"}),
            ("platform", {"platform"}),
            ("enterprise", set()),
        ],
    )
    def test_scope(self, client: TestClient, cast: Cast, role: str, sees: set[str]) -> None:
        r = client.get(URL, headers=cast.headers(cast.by_role()[role]))
        assert r.status_code == 200
        assert {p["id"] for p in r.json()["items"]} == {getattr(cast, n).id for n in sees}

    def test_filters(self, client: TestClient, cast: Cast) -> None:
        headers = cast.headers(cast.admin)
        r = client.get(URL, params={"kind": "platform"}, headers=headers)
        assert [p["id"] for p in r.json()["items"]] == [cast.platform.id]
        r = client.get(URL, params={"q": "互联网"}, headers=headers)
        assert [p["id"] for p in r.json()["items"]] == [cast.platform.id]

    def test_other_expert_is_404(self, client: TestClient, cast: Cast) -> None:
        r = client.get(f"{URL}/{cast.platform.id}", headers=cast.headers(cast.expert_user))
        assert r.status_code == 404


class TestCreateAndUpdate:
    @pytest.mark.parametrize(
        ("role", "status"),
        [
            ("admin", 201),
            ("coordinator", 201),
            ("other_coordinator", 403),
            ("enterprise", 403),
            ("expert", 403),
        ],
    )
    def test_who_adds_providers(
        self, client: TestClient, cast: Cast, role: str, status: int
    ) -> None:
        r = client.post(URL, json=body(), headers=cast.headers(cast.by_role()[role]))
        assert r.status_code == status, r.text

    @pytest.mark.parametrize(
        ("field", "value", "where"),
        [
            ("capacity", -1, "capacity"),
            ("skills", {}, "skills"),
            ("skills", {"legal_ip": 0}, "skills.legal_ip"),
            ("industries", ["C99"], "industries.0"),
            ("kind", "robot", "kind"),
            ("paused_until_date", "2020-01-01", "paused_until_date"),
        ],
    )
    def test_bad_input(
        self, client: TestClient, cast: Cast, field: str, value: Any, where: str
    ) -> None:
        extra = {"paused_from_date": "2021-01-01"} if field == "paused_until_date" else {}
        r = client.post(URL, json=body(**{field: value}, **extra), headers=cast.headers(cast.admin))
        assert r.status_code == 422, r.text
        assert r.json()["field"].startswith(where.split(".")[0])

    def test_expert_edits_own_profile_but_not_active(self, client: TestClient, cast: Cast) -> None:
        headers = cast.headers(cast.expert_user)
        r = client.patch(
            f"{URL}/{cast.expert.id}",
            json={"capacity": 3, "expertise": "融资 担保"},
            headers=headers | {"If-Match": "*"},
        )
        assert r.status_code == 200
        assert r.json()["capacity"] == 3
        r = client.patch(
            f"{URL}/{cast.expert.id}", json={"active": False}, headers=headers | {"If-Match": "*"}
        )
        assert r.status_code == 403
        assert r.json()["field"] == "active"

    @pytest.mark.parametrize(
        ("role", "status"),
        [
            ("admin", 200),
            ("coordinator", 200),
            ("other_coordinator", 403),
            ("platform", 404),
            ("enterprise", 404),
        ],
    )
    def test_who_deactivates(self, client: TestClient, cast: Cast, role: str, status: int) -> None:
        r = client.patch(
            f"{URL}/{cast.expert.id}",
            json={"active": False},
            headers=cast.headers(cast.by_role()[role]) | {"If-Match": "*"},
        )
        assert r.status_code == status, r.text

    def test_pause_dates(self, client: TestClient, cast: Cast) -> None:
        r = client.patch(
            f"{URL}/{cast.expert.id}",
            json={"paused_from_date": "2026-12-01", "paused_until_date": "2026-12-20"},
            headers=cast.headers(cast.expert_user) | {"If-Match": "*"},
        )
        assert r.status_code == 200
        assert r.json()["paused_until_date"] == "2026-12-20"


class TestConflicts:
    def test_declare_list_withdraw(self, client: TestClient, cast: Cast) -> None:
        headers = cast.headers(cast.expert_user)
        url = f"{URL}/{cast.expert.id}/conflicts"
        r = client.post(
            url, json={"uscc": cast.other_ent.uscc, "reason": "曾任该公司顾问"}, headers=headers
        )
        assert r.status_code == 201, r.text
        assert (
            client.post(url, json={"uscc": cast.other_ent.uscc}, headers=headers).status_code == 409
        )
        assert [c["enterprise_id"] for c in client.get(url, headers=headers).json()["items"]] == [
            cast.other_ent.id
        ]
        assert client.delete(f"{url}/{cast.other_ent.id}", headers=headers).status_code == 204
        assert client.get(url, headers=headers).json()["items"] == []

    def test_unknown_uscc_is_404(self, client: TestClient, cast: Cast) -> None:
        from app.common.codes import make_uscc

        r = client.post(
            f"{URL}/{cast.expert.id}/conflicts",
            json={"uscc": make_uscc("350582", 999999)},
            headers=cast.headers(cast.expert_user),
        )
        assert r.status_code == 404
        assert r.json()["field"] == "uscc"

    @pytest.mark.parametrize(
        ("role", "status"),
        [("platform", 404), ("enterprise", 404), ("other_coordinator", 403), ("coordinator", 200)],
    )
    def test_others_cannot_see_conflicts(
        self, client: TestClient, cast: Cast, role: str, status: int
    ) -> None:
        r = client.get(
            f"{URL}/{cast.expert.id}/conflicts", headers=cast.headers(cast.by_role()[role])
        )
        assert r.status_code == status
