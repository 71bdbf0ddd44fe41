from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.common.codes import make_uscc
from app.models import Enterprise, Provider, User
from tests.app.conftest import Cast
from tests.factories import PASSWORD


def registration(email: str = "boss@jinjiang-shoes.cn", **enterprise: Any) -> dict[str, Any]:
    return {
        "email": email,
        "password": "a-long-password",
        "full_name": "王总",
        "enterprise": {
            "name": "晋江市鞋业有限公司",
            "uscc": make_uscc("350582", 4242),
            "region_code": "350582",
            "industry_code": "C19",
            "size": "micro",
        }
        | enterprise,
    }


def log_in(client: TestClient, email: str, password: str) -> Any:
    return client.post("/api/v1/auth/token", data={"username": email, "password": password})


class TestLogIn:
    def test_password_log_in_gives_a_working_token(self, client: TestClient, cast: Cast) -> None:
        r = log_in(client, cast.coordinator.email, PASSWORD)
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["email"] == cast.coordinator.email

    def test_wrong_password_and_unknown_user_look_the_same(
        self, client: TestClient, cast: Cast
    ) -> None:
        wrong = log_in(client, cast.coordinator.email, "nope-nope")
        unknown = log_in(client, "ghost@example.cn", "nope-nope")
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json()["detail"] == unknown.json()["detail"]

    def test_forged_token_is_401(self, client: TestClient, cast: Cast) -> None:
        r = client.get("/api/v1/users/me", headers={"Authorization": "Bearer not.a.jwt"})
        assert r.status_code == 401

    def test_deactivated_user_cannot_log_in(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        cast.expert_user.is_active = False
        db.commit()
        assert log_in(client, cast.expert_user.email, PASSWORD).status_code == 401
        assert (
            client.get("/api/v1/users/me", headers=cast.headers(cast.expert_user)).status_code
            == 401
        )


class TestSelfRegistration:
    def test_enterprise_registers_and_logs_in(self, client: TestClient, db: Session) -> None:
        r = client.post("/api/v1/auth/register/enterprise", json=registration())
        assert r.status_code == 201, r.text
        assert r.json()["role"] == "enterprise"
        assert r.json()["enterprise_id"]
        assert log_in(client, "boss@jinjiang-shoes.cn", "a-long-password").status_code == 200

    def test_bad_uscc_names_the_nested_field_and_stores_nothing(
        self, client: TestClient, db: Session
    ) -> None:
        r = client.post(
            "/api/v1/auth/register/enterprise", json=registration(uscc="91350582000004242A")
        )
        assert r.status_code == 422
        assert r.json()["field"] == "enterprise.uscc"
        assert db.scalar(select(func.count()).select_from(User)) == 0

    def test_duplicate_uscc_is_409_and_leaves_no_user(
        self, client: TestClient, db: Session
    ) -> None:
        assert (
            client.post("/api/v1/auth/register/enterprise", json=registration()).status_code == 201
        )
        r = client.post("/api/v1/auth/register/enterprise", json=registration(email="other@x.cn"))
        assert r.status_code == 409
        assert r.json()["field"] == "uscc"
        assert db.scalar(select(func.count()).select_from(User)) == 1
        assert db.scalar(select(func.count()).select_from(Enterprise)) == 1

    def test_duplicate_email_is_409(self, client: TestClient, cast: Cast) -> None:
        r = client.post(
            "/api/v1/auth/register/enterprise", json=registration(email=cast.admin.email)
        )
        assert r.status_code == 409
        assert r.json()["field"] == "email"

    def test_expert_registers_with_skills(self, client: TestClient, db: Session) -> None:
        body = {
            "email": "li@fzu.edu.cn",
            "password": "a-long-password",
            "full_name": "李教授",
            "provider": {
                "kind": "expert",
                "name": "李教授",
                "skills": {"technology_rd": 3},
                "regions": ["35"],
                "capacity": 2,
            },
        }
        r = client.post("/api/v1/auth/register/provider", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["role"] == "expert"

    @pytest.mark.parametrize(
        ("provider", "field"),
        [
            ({"skills": {"astrology": 2}}, "skills"),
            ({"skills": {"financing": 4}}, "provider.skills.financing"),
            ({"capacity": -1}, "provider.capacity"),
            ({"regions": ["3"]}, "provider.regions.0"),
        ],
    )
    def test_bad_provider_profile(
        self, client: TestClient, db: Session, provider: dict[str, Any], field: str
    ) -> None:
        base = {"kind": "expert", "name": "x", "skills": {"financing": 2}}
        body = {
            "email": "x@y.cn",
            "password": "a-long-password",
            "full_name": "x",
            "provider": base | provider,
        }
        r = client.post("/api/v1/auth/register/provider", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field
        assert db.scalar(select(func.count()).select_from(Provider)) == 0


class TestStaff:
    @pytest.mark.parametrize(
        ("role", "status"),
        [
            ("admin", 201),
            ("coordinator", 403),
            ("enterprise", 403),
            ("expert", 403),
            ("platform", 403),
        ],
    )
    def test_only_admins_create_coordinators(
        self, client: TestClient, cast: Cast, role: str, status: int
    ) -> None:
        body = {
            "email": "new.coord@zhuqi.cn",
            "password": "a-long-password",
            "full_name": "新协调员",
            "role": "coordinator",
            "region_prefixes": ["3505"],
        }
        r = client.post("/api/v1/users", json=body, headers=cast.headers(cast.by_role()[role]))
        assert r.status_code == status, r.text

    def test_coordinator_needs_regions(self, client: TestClient, cast: Cast) -> None:
        body = {
            "email": "c@zhuqi.cn",
            "password": "a-long-password",
            "full_name": "c",
            "role": "coordinator",
        }
        r = client.post("/api/v1/users", json=body, headers=cast.headers(cast.admin))
        assert r.status_code == 422

    @pytest.mark.parametrize(
        ("role", "status"), [("admin", 200), ("coordinator", 403), ("expert", 403)]
    )
    def test_only_admins_list_users(
        self, client: TestClient, cast: Cast, role: str, status: int
    ) -> None:
        assert (
            client.get("/api/v1/users", headers=cast.headers(cast.by_role()[role])).status_code
            == status
        )

    def test_admin_changes_regions(self, client: TestClient, cast: Cast) -> None:
        r = client.patch(
            f"/api/v1/users/{cast.coordinator.id}",
            json={"region_prefixes": ["3505"]},
            headers=cast.headers(cast.admin) | {"If-Match": "*"},
        )
        assert r.status_code == 200
        assert r.json()["region_prefixes"] == ["3505"]


class TestApiKeys:
    def test_key_works_until_revoked(self, client: TestClient, cast: Cast) -> None:
        created = client.post(
            "/api/v1/api-keys", json={"name": "ERP sync"}, headers=cast.headers(cast.coordinator)
        )
        assert created.status_code == 201
        key = created.json()["key"]
        me = client.get("/api/v1/users/me", headers={"X-API-Key": key})
        assert me.status_code == 200
        assert me.json()["id"] == cast.coordinator.id
        listed = client.get("/api/v1/api-keys", headers=cast.headers(cast.coordinator)).json()
        assert "key" not in listed["items"][0]
        assert (
            client.delete(
                f"/api/v1/api-keys/{created.json()['id']}", headers=cast.headers(cast.coordinator)
            ).status_code
            == 204
        )
        assert client.get("/api/v1/users/me", headers={"X-API-Key": key}).status_code == 401

    def test_someone_elses_key_cannot_be_revoked(self, client: TestClient, cast: Cast) -> None:
        created = client.post(
            "/api/v1/api-keys", json={"name": "k"}, headers=cast.headers(cast.coordinator)
        )
        r = client.delete(
            f"/api/v1/api-keys/{created.json()['id']}", headers=cast.headers(cast.expert_user)
        )
        assert r.status_code == 404

    def test_tampered_key_is_401(self, client: TestClient, cast: Cast) -> None:
        key = client.post(
            "/api/v1/api-keys", json={"name": "k"}, headers=cast.headers(cast.admin)
        ).json()["key"]
        assert (
            client.get("/api/v1/users/me", headers={"X-API-Key": key[:-2] + "xx"}).status_code
            == 401
        )


def test_password_change(client: TestClient, cast: Cast) -> None:
    headers = cast.headers(cast.expert_user)
    bad = client.post(
        "/api/v1/users/me/password",
        json={"current_password": "wrong", "new_password": "another-password"},
        headers=headers,
    )
    assert bad.status_code == 403
    ok = client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "another-password"},
        headers=headers,
    )
    assert ok.status_code == 204
    assert log_in(client, cast.expert_user.email, "another-password").status_code == 200
