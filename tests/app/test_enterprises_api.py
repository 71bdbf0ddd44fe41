from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.common.codes import make_uscc
from app.models import Enterprise, Event
from tests.app.conftest import Cast

URL = "/api/v1/enterprises"


def new_enterprise(region: str = "350583", serial: int = 777) -> dict[str, object]:
    return {
        "name": "南安市石材有限公司",
        "uscc": make_uscc(region, serial),
        "region_code": region,
        "industry_code": "C30",
        "size": "small",
        "tier": "innovative",
        "headcount": 80,
    }


class TestList:
    @pytest.mark.parametrize(
        ("role", "sees"),
        [
            ("admin", {"ent", "other_ent"}),
            ("coordinator", {"ent"}),
            ("other_coordinator", {"other_ent"}),
            ("enterprise", {"ent"}),
            ("other_enterprise", {"other_ent"}),
            ("expert", set()),
            ("platform", set()),
        ],
    )
    def test_each_role_sees_only_its_scope(
        self, client: TestClient, cast: Cast, role: str, sees: set[str]
    ) -> None:
        r = client.get(URL, headers=cast.headers(cast.by_role()[role]))
        assert r.status_code == 200, r.text
        ids = {e["id"] for e in r.json()["items"]}
        assert ids == {getattr(cast, name).id for name in sees}

    def test_anonymous_is_401_problem(self, client: TestClient, cast: Cast) -> None:
        r = client.get(URL)
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == 401

    def test_filters_and_keyset_pages(self, client: TestClient, cast: Cast) -> None:
        headers = cast.headers(cast.admin)
        assert [
            e["id"]
            for e in client.get(URL, params={"region": "41"}, headers=headers).json()["items"]
        ] == [cast.other_ent.id]
        assert client.get(URL, params={"industry": "C35"}, headers=headers).json()["items"] == []
        first = client.get(URL, params={"limit": 1}, headers=headers).json()
        assert len(first["items"]) == 1
        assert first["next_cursor"]
        second = client.get(
            URL, params={"limit": 1, "cursor": first["next_cursor"]}, headers=headers
        ).json()
        assert second["items"][0]["id"] > first["items"][0]["id"]
        assert second["next_cursor"] is None

    def test_bad_filter_names_the_field(self, client: TestClient, cast: Cast) -> None:
        r = client.get(URL, params={"region": "99"}, headers=cast.headers(cast.admin))
        assert r.status_code == 422
        assert r.json()["field"] == "region"
        r = client.get(URL, params={"cursor": "garbage!"}, headers=cast.headers(cast.admin))
        assert r.status_code == 422
        assert r.json()["field"] == "cursor"

    def test_limit_is_capped(self, client: TestClient, cast: Cast) -> None:
        r = client.get(URL, params={"limit": 10_000}, headers=cast.headers(cast.admin))
        assert r.status_code == 200


class TestRead:
    @pytest.mark.parametrize(
        ("role", "status"),
        [
            ("admin", 200),
            ("coordinator", 200),
            ("other_coordinator", 404),
            ("enterprise", 200),
            ("other_enterprise", 404),
            ("expert", 404),
            ("platform", 404),
        ],
    )
    def test_outside_scope_is_404(
        self, client: TestClient, cast: Cast, role: str, status: int
    ) -> None:
        r = client.get(f"{URL}/{cast.ent.id}", headers=cast.headers(cast.by_role()[role]))
        assert r.status_code == status, r.text
        if status == 200:
            assert r.headers["etag"] == f'W/"{cast.ent.version}"'


class TestCreate:
    @pytest.mark.parametrize(
        ("role", "status"),
        [
            ("admin", 201),
            ("coordinator", 201),
            ("other_coordinator", 403),
            ("enterprise", 403),
            ("expert", 403),
            ("platform", 403),
        ],
    )
    def test_who_may_register_an_enterprise(
        self, client: TestClient, cast: Cast, role: str, status: int
    ) -> None:
        r = client.post(URL, json=new_enterprise(), headers=cast.headers(cast.by_role()[role]))
        assert r.status_code == status, r.text

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("uscc", "91350583000000777X"),
            ("uscc", "short"),
            ("region_code", "9905"),
            ("region_code", "990582"),
            ("industry_code", "C99"),
            ("industry_code", "Z12"),
            ("size", "huge"),
            ("headcount", -1),
            ("name", ""),
            ("name", "x" * 201),
        ],
    )
    def test_bad_input_names_the_field_and_stores_nothing(
        self, client: TestClient, cast: Cast, db: Session, field: str, value: object
    ) -> None:
        before = db.scalar(select(func.count()).select_from(Enterprise))
        body = new_enterprise() | {field: value}
        r = client.post(URL, json=body, headers=cast.headers(cast.admin))
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["field"] == field
        assert db.scalar(select(func.count()).select_from(Enterprise)) == before

    def test_unknown_field_is_refused(self, client: TestClient, cast: Cast) -> None:
        r = client.post(
            URL, json=new_enterprise() | {"colour": "red"}, headers=cast.headers(cast.admin)
        )
        assert r.status_code == 422
        assert r.json()["field"] == "colour"

    def test_duplicate_uscc_is_409(self, client: TestClient, cast: Cast) -> None:
        body = new_enterprise() | {"uscc": cast.ent.uscc}
        r = client.post(URL, json=body, headers=cast.headers(cast.admin))
        assert r.status_code == 409
        assert r.json()["field"] == "uscc"

    def test_idempotency_key_replays(self, client: TestClient, cast: Cast, db: Session) -> None:
        headers = cast.headers(cast.coordinator) | {"Idempotency-Key": "abc-1"}
        first = client.post(URL, json=new_enterprise(), headers=headers)
        again = client.post(URL, json=new_enterprise(), headers=headers)
        assert first.status_code == again.status_code == 201
        assert first.json()["id"] == again.json()["id"]
        other = client.post(URL, json=new_enterprise(serial=778), headers=headers)
        assert other.status_code == 422
        assert other.json()["field"] == "Idempotency-Key"


class TestUpdate:
    @pytest.mark.parametrize(
        ("role", "status"),
        [
            ("admin", 200),
            ("coordinator", 200),
            ("other_coordinator", 404),
            ("enterprise", 200),
            ("other_enterprise", 404),
            ("expert", 404),
        ],
    )
    def test_who_may_edit(self, client: TestClient, cast: Cast, role: str, status: int) -> None:
        r = client.patch(
            f"{URL}/{cast.ent.id}",
            json={"headcount": 150},
            headers=cast.headers(cast.by_role()[role]) | {"If-Match": "*"},
        )
        assert r.status_code == status, r.text

    def test_stale_if_match_is_412(self, client: TestClient, cast: Cast) -> None:
        headers = cast.headers(cast.ent_user)
        etag = client.get(f"{URL}/{cast.ent.id}", headers=headers).headers["etag"]
        ok = client.patch(
            f"{URL}/{cast.ent.id}", json={"headcount": 151}, headers=headers | {"If-Match": etag}
        )
        assert ok.status_code == 200
        assert ok.headers["etag"] != etag
        stale = client.patch(
            f"{URL}/{cast.ent.id}", json={"headcount": 152}, headers=headers | {"If-Match": etag}
        )
        assert stale.status_code == 412
        assert client.get(f"{URL}/{cast.ent.id}", headers=headers).json()["headcount"] == 151

    def test_coordinator_cannot_move_enterprise_out_of_region(
        self, client: TestClient, cast: Cast
    ) -> None:
        r = client.patch(
            f"{URL}/{cast.ent.id}",
            json={"region_code": "410105"},
            headers=cast.headers(cast.coordinator) | {"If-Match": "*"},
        )
        assert r.status_code == 403
        assert r.json()["field"] == "region_code"

    def test_update_writes_an_event(self, client: TestClient, cast: Cast, db: Session) -> None:
        client.patch(
            f"{URL}/{cast.ent.id}",
            json={"headcount": 99},
            headers=cast.headers(cast.ent_user) | {"If-Match": "*"},
        )
        event = db.scalars(select(Event).where(Event.action == "enterprise.updated")).one()
        assert event.before is not None
        assert event.after is not None
        assert event.before["headcount"] == 120
        assert event.after["headcount"] == 99
        assert event.actor_id == cast.ent_user.id
