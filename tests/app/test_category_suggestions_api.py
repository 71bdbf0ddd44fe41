"""Category suggestion at intake: ranked, labelled, with evidence; filing without a category."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Category
from tests.app.conftest import Cast

URL = "/api/v1/requests"
SUGGEST = f"{URL}/suggest-category"
LOAN = "流动资金紧张，银行续贷下不来，想找融资担保公司帮忙"


class TestSuggest:
    @pytest.mark.parametrize("role", ["enterprise", "expert", "coordinator", "admin"])
    def test_any_logged_in_user_gets_every_category_ranked(
        self, client: TestClient, cast: Cast, db: Session, role: str
    ) -> None:
        r = client.post(SUGGEST, json={"text": LOAN}, headers=cast.headers(cast.by_role()[role]))
        assert r.status_code == 200, r.text
        ranked = r.json()["suggestions"]
        assert {s["category"] for s in ranked} == set(db.scalars(Category.__table__.select()))
        assert [s["score"] for s in ranked] == sorted((s["score"] for s in ranked), reverse=True)
        top = ranked[0]
        assert top["category"] == "financing"
        assert (top["label_zh"], top["label_en"]) == ("融资", "Financing")
        assert top["evidence"]
        assert all(word in LOAN for word in top["evidence"])

    def test_english_text_is_understood(self, client: TestClient, cast: Cast) -> None:
        text = "A customer owes us 2 million yuan and has not paid for a year"
        r = client.post(SUGGEST, json={"text": text}, headers=cast.headers(cast.ent_user))
        assert r.json()["suggestions"][0]["category"] == "receivables"

    def test_anonymous_is_refused(self, client: TestClient) -> None:
        assert client.post(SUGGEST, json={"text": LOAN}).status_code == 401

    def test_empty_text_names_the_field(self, client: TestClient, cast: Cast) -> None:
        r = client.post(SUGGEST, json={"text": ""}, headers=cast.headers(cast.ent_user))
        assert r.status_code == 422
        assert r.json()["field"] == "text"


class TestFilingWithoutCategory:
    def test_files_under_the_top_suggestion_marked_suggested(
        self, client: TestClient, cast: Cast
    ) -> None:
        body = {
            "title": "客户拖欠货款一年多",
            "description": "欠款180万，催了很多次都不给",
            "urgency": 3,
        }
        r = client.post(URL, json=body, headers=cast.headers(cast.ent_user))
        assert r.status_code == 201, r.text
        assert r.json()["category"] == "receivables"
        assert r.json()["category_source"] == "suggested"
        assert "receivables" not in r.json()["extra_categories"]

    def test_triage_confirms_or_changes_it(self, client: TestClient, cast: Cast) -> None:
        body = {"title": "客户拖欠货款一年多", "extra_categories": ["legal_ip"], "urgency": 3}
        created = client.post(URL, json=body, headers=cast.headers(cast.ent_user)).json()
        assert created["extra_categories"] == ["legal_ip"]
        r = client.post(
            f"{URL}/{created['id']}/triage",
            json={"category": "legal_ip"},
            headers=cast.headers(cast.coordinator),
        )
        assert r.status_code == 200, r.text
        assert (r.json()["category"], r.json()["category_source"]) == ("legal_ip", "confirmed")
        assert r.json()["extra_categories"] == []  # the new primary is no longer secondary

    def test_a_given_category_is_kept_as_given(self, client: TestClient, cast: Cast) -> None:
        body = {"title": "上ERP系统", "category": "digital_transformation", "urgency": 3}
        r = client.post(URL, json=body, headers=cast.headers(cast.ent_user))
        assert (r.json()["category"], r.json()["category_source"]) == (
            "digital_transformation",
            "given",
        )

    def test_unknown_extra_category_names_the_field(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        body = {"title": "上ERP系统", "extra_categories": ["astrology"], "urgency": 3}
        r = client.post(URL, json=body, headers=cast.headers(cast.ent_user))
        assert r.status_code == 422
        assert r.json()["field"] == "extra_categories"
