"""Input edges: oversized bodies, control characters, extreme datetimes, 405 and OpenAPI.

Each answer is a problem body naming what is wrong, never a 500, and identical on both
databases (PostgreSQL refuses NUL in text where SQLite would store it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Enterprise, User
from tests.app.conftest import Cast
from tests.factories import app_of

API = "/api/v1"


def registration(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": "edge@example.com",
        "password": "a long enough passphrase",
        "full_name": "边界测试",
        "enterprise": {
            "name": "晋江市边界测试有限公司",
            "uscc": "91350582MA2YX1234H",
            "region_code": "350582",
            "industry_code": "C17",
            "size": "small",
        },
    }
    return body | overrides


class TestBodyLimit:
    def test_declared_length_over_the_limit_is_413_before_parsing(self, client: TestClient) -> None:
        limit = app_of(client).state.settings.max_body_bytes
        body = b"[" + b"1," * limit + b"1]"
        response = client.post(
            f"{API}/auth/register/enterprise",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert str(limit) in response.json()["detail"]

    def test_streamed_body_without_length_is_cut_at_the_limit(self, client: TestClient) -> None:
        limit = app_of(client).state.settings.max_body_bytes

        def chunks() -> Iterator[bytes]:
            for _ in range(limit // 65536 + 2):
                yield b" " * 65536

        response = client.post(
            f"{API}/auth/register/enterprise",
            content=chunks(),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 413

    def test_a_body_under_the_limit_still_reaches_the_endpoint(self, client: TestClient) -> None:
        response = client.post(
            f"{API}/auth/register/enterprise",
            content=b"{",
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422


class TestControlCharacters:
    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"full_name": "bad\x00name"}, "full_name"),
            ({"email": "nul\x00@example.com"}, "email"),
            ({"full_name": "bell\x07"}, "full_name"),
        ],
    )
    def test_body_strings_with_control_chars_are_422_naming_the_field(
        self, client: TestClient, db: Session, overrides: dict[str, Any], field: str
    ) -> None:
        users_before = db.scalar(select(func.count()).select_from(User))
        response = client.post(f"{API}/auth/register/enterprise", json=registration(**overrides))
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field
        assert db.scalar(select(func.count()).select_from(User)) == users_before

    def test_nested_strings_are_checked_too(self, client: TestClient, db: Session) -> None:
        body = registration()
        body["enterprise"]["name"] = "晋江\x00市"
        response = client.post(f"{API}/auth/register/enterprise", json=body)
        assert response.status_code == 422
        assert response.json()["field"] == "enterprise.name"
        assert db.scalar(select(func.count()).select_from(Enterprise)) == 0

    def test_line_breaks_and_tabs_are_free_text(self, client: TestClient, cast: Cast) -> None:
        response = client.post(
            f"{API}/requests",
            json={
                "category": "financing",
                "title": "资金",
                "description": "第一行\n第二行\t缩进",
                "urgency": 3,
            },
            headers=cast.headers(cast.ent_user),
        )
        assert response.status_code == 201, response.text
        assert response.json()["description"] == "第一行\n第二行\t缩进"

    def test_query_parameter_with_nul_is_422_naming_it(
        self, client: TestClient, cast: Cast
    ) -> None:
        response = client.get(
            f"{API}/enterprises", params={"q": "a\x00b"}, headers=cast.headers(cast.admin)
        )
        assert response.status_code == 422
        assert response.json()["field"] == "q"

    def test_form_fields_of_log_in_are_checked(self, client: TestClient) -> None:
        response = client.post(
            f"{API}/auth/token", data={"username": "x\x00@example.com", "password": "whatever"}
        )
        assert response.status_code == 422
        assert response.json()["field"] == "username"


class TestExtremeDatetimes:
    @pytest.mark.parametrize(
        "since", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1066-10-14T09:00:00"]
    )
    def test_event_filter_outside_the_range_is_422(
        self, client: TestClient, cast: Cast, since: str
    ) -> None:
        response = client.get(
            f"{API}/events", params={"since": since}, headers=cast.headers(cast.admin)
        )
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "since"

    def test_an_ordinary_offset_is_accepted(self, client: TestClient, cast: Cast) -> None:
        response = client.get(
            f"{API}/events",
            params={"since": "2026-01-01T08:00:00+08:00"},
            headers=cast.headers(cast.admin),
        )
        assert response.status_code == 200


class TestFrameworkErrors:
    def test_405_keeps_its_allow_header(self, client: TestClient, cast: Cast) -> None:
        response = client.delete(f"{API}/enterprises", headers=cast.headers(cast.admin))
        assert response.status_code == 405
        assert "GET" in response.headers["allow"]
        assert response.headers["content-type"] == "application/problem+json"


def test_every_operation_declares_the_statuses_any_request_can_meet(app: FastAPI) -> None:
    document = app.openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            declared = set(operation["responses"])
            missing = {"400", "413", "422", "500", "503"} - declared
            assert not missing, f"{method.upper()} {path} does not declare {sorted(missing)}"
