from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.app.conftest import Cast
from tests.factories import make_policy

URL = "/api/v1/policies"


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "title": "数字化转型券",
        "issuer": "泉州市工信局",
        "tiers": ["innovative"],
        "categories": ["digital_transformation"],
        "region_prefixes": ["3505"],
        "valid_from_date": "2026-01-01",
        "valid_until_date": "2026-12-31",
    } | overrides


@pytest.mark.parametrize("role", ["admin", "coordinator", "enterprise", "expert", "platform"])
def test_everyone_signed_in_reads_the_catalogue(
    client: TestClient, cast: Cast, db: Session, role: str
) -> None:
    policy = make_policy(db)
    db.commit()
    headers = cast.headers(cast.by_role()[role])
    assert client.get(URL, headers=headers).json()["items"][0]["id"] == policy.id
    assert client.get(f"{URL}/{policy.id}", headers=headers).status_code == 200


def test_anonymous_cannot(client: TestClient, cast: Cast) -> None:
    assert client.get(URL).status_code == 401


@pytest.mark.parametrize(
    ("role", "status"), [("admin", 201), ("coordinator", 403), ("enterprise", 403), ("expert", 403)]
)
def test_only_admins_write(client: TestClient, cast: Cast, role: str, status: int) -> None:
    assert (
        client.post(URL, json=body(), headers=cast.headers(cast.by_role()[role])).status_code
        == status
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("valid_until_date", "2025-01-01"),
        ("tiers", ["legendary"]),
        ("categories", ["nope"]),
        ("region_prefixes", ["123"]),
        ("url", "ftp://x"),
    ],
)
def test_bad_input(client: TestClient, cast: Cast, field: str, value: Any) -> None:
    r = client.post(URL, json=body(**{field: value}), headers=cast.headers(cast.admin))
    assert r.status_code == 422, r.text
    assert r.json()["field"].startswith(field)


def test_update_and_valid_on_filter(client: TestClient, cast: Cast) -> None:
    headers = cast.headers(cast.admin)
    created = client.post(URL, json=body(), headers=headers).json()
    r = client.patch(
        f"{URL}/{created['id']}",
        json={"summary": "每家最高5万元"},
        headers=headers | {"If-Match": f'W/"{created["version"]}"'},
    )
    assert r.status_code == 200
    assert r.json()["summary"] == "每家最高5万元"
    assert (
        client.patch(
            f"{URL}/{created['id']}", json={"summary": "x"}, headers=headers | {"If-Match": 'W/"1"'}
        ).status_code
        == 412
    )
    assert client.get(URL, params={"valid_on": "2027-03-01"}, headers=headers).json()["items"] == []
    assert (
        len(client.get(URL, params={"valid_on": "2026-03-01"}, headers=headers).json()["items"])
        == 1
    )


def test_taxonomy(client: TestClient, cast: Cast) -> None:
    keys = [
        c["key"]
        for c in client.get("/api/v1/categories", headers=cast.headers(cast.expert_user)).json()[
            "items"
        ]
    ]
    assert len(keys) == 13
    assert "legal_ip" in keys
    new = {"key": "energy", "name_zh": "能源", "name_en": "Energy"}
    assert (
        client.post(
            "/api/v1/categories", json=new, headers=cast.headers(cast.coordinator)
        ).status_code
        == 403
    )
    assert (
        client.post("/api/v1/categories", json=new, headers=cast.headers(cast.admin)).status_code
        == 201
    )
    assert (
        client.post("/api/v1/categories", json=new, headers=cast.headers(cast.admin)).status_code
        == 409
    )


def test_admins_tune_the_clocks(client: TestClient, cast: Cast) -> None:
    body = {"route_days": 2, "resolve_days_major": 45}
    assert (
        client.patch(
            "/api/v1/categories/legal_ip",
            json=body,
            headers=cast.headers(cast.coordinator) | {"If-Match": "*"},
        ).status_code
        == 403
    )
    r = client.patch(
        "/api/v1/categories/legal_ip",
        json=body,
        headers=cast.headers(cast.admin) | {"If-Match": "*"},
    )
    assert r.status_code == 200
    assert (
        r.json()["route_days"],
        r.json()["resolve_days_major"],
        r.json()["first_feedback_days"],
    ) == (2, 45, 3)
    bad = client.patch(
        "/api/v1/categories/legal_ip",
        json={"route_days": 0},
        headers=cast.headers(cast.admin) | {"If-Match": "*"},
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "route_days"
    assert (
        client.patch(
            "/api/v1/categories/nope",
            json=body,
            headers=cast.headers(cast.admin) | {"If-Match": "*"},
        ).status_code
        == 404
    )
