"""Admins extend the glossary at run time; the next match run's text model uses it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.assignments.encode import lexicon
from app.glossary import service as glossary_service
from app.models import Event, GlossaryEntry
from matching.scoring.glossary import CONCEPT_PREFIX, default_glossary
from tests.app.conftest import Cast

URL = "/api/v1/glossary"


def _create(client: TestClient, cast: Cast, **body: object) -> dict[str, object]:
    r = client.post(
        URL,
        json={"concept": "late_payment", "zh": ["压款"]} | body,
        headers=cast.headers(cast.admin),
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


class TestCreate:
    def test_admin_adds_a_concept_and_it_is_audited(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        made = _create(client, cast, en=["Late Payment", "late payment"])
        assert made["concept"] == "late_payment"
        assert made["en"] == ["late payment"]  # folded to lower case, deduplicated
        assert made["extends_shipped"] is False
        event = db.scalars(select(Event).where(Event.action == "glossary.created")).one()
        assert event.entity_id == made["id"]

    def test_adding_terms_to_a_shipped_concept(self, client: TestClient, cast: Cast) -> None:
        made = _create(client, cast, concept="bank_loan", zh=["转贷"])
        assert made["extends_shipped"] is True

    def test_a_second_entry_for_a_concept_is_409(self, client: TestClient, cast: Cast) -> None:
        _create(client, cast)
        again = client.post(
            URL, json={"concept": "late_payment", "zh": ["押款"]}, headers=cast.headers(cast.admin)
        )
        assert again.status_code == 409
        assert again.json()["field"] == "concept"

    def test_no_term_at_all_is_422(self, client: TestClient, cast: Cast) -> None:
        r = client.post(URL, json={"concept": "empty"}, headers=cast.headers(cast.admin))
        assert r.status_code == 422

    def test_a_bad_concept_key_is_422_naming_it(self, client: TestClient, cast: Cast) -> None:
        r = client.post(
            URL, json={"concept": "Bad Key!", "zh": ["甲"]}, headers=cast.headers(cast.admin)
        )
        assert r.status_code == 422
        assert "concept" in r.text


class TestListAndEdit:
    def test_pages_with_a_total(self, client: TestClient, cast: Cast) -> None:
        for i in range(3):
            _create(client, cast, concept=f"slang_{i}")
        staff = cast.headers(cast.coordinator)
        first = client.get(URL, params={"limit": 2}, headers=staff).json()
        assert len(first["items"]) == 2
        assert first["total"] == 3
        rest = client.get(URL, params={"limit": 2, "cursor": first["next_cursor"]}, headers=staff)
        assert [e["concept"] for e in rest.json()["items"]] == ["slang_2"]

    def test_patch_replaces_terms_under_if_match(self, client: TestClient, cast: Cast) -> None:
        made = _create(client, cast)
        url, admin = f"{URL}/{made['id']}", cast.headers(cast.admin)
        assert client.patch(url, json={"zh": ["押款"]}, headers=admin).status_code == 428
        ok = client.patch(url, json={"zh": ["押款", "压货款"]}, headers=admin | {"If-Match": '"1"'})
        assert ok.status_code == 200, ok.text
        assert ok.json()["zh"] == ["押款", "压货款"]
        stale = client.patch(url, json={"zh": ["x"]}, headers=admin | {"If-Match": '"1"'})
        assert stale.status_code == 412

    def test_a_patch_leaving_no_term_is_422_and_changes_nothing(
        self, client: TestClient, cast: Cast
    ) -> None:
        made = _create(client, cast)  # Chinese terms only
        url, admin = f"{URL}/{made['id']}", cast.headers(cast.admin) | {"If-Match": '"1"'}
        r = client.patch(url, json={"zh": []}, headers=admin)
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "zh"
        assert client.get(url, headers=admin).json()["zh"] == ["压款"]
        moved = client.patch(url, json={"zh": [], "en": ["late payment"]}, headers=admin)
        assert moved.status_code == 200, moved.text
        assert (moved.json()["zh"], moved.json()["en"]) == ([], ["late payment"])

    def test_coordinators_read_but_cannot_edit(self, client: TestClient, cast: Cast) -> None:
        made = _create(client, cast)
        staff = cast.headers(cast.coordinator)
        assert client.get(f"{URL}/{made['id']}", headers=staff).status_code == 200
        r = client.patch(
            f"{URL}/{made['id']}", json={"zh": ["x"]}, headers=staff | {"If-Match": "*"}
        )
        assert r.status_code == 403

    def test_delete_withdraws_an_entry_under_if_match_and_is_audited(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        made = _create(client, cast, concept="slang_x", zh=["压款"])
        url, admin = f"{URL}/{made['id']}", cast.headers(cast.admin)
        assert client.delete(url, headers=cast.headers(cast.coordinator)).status_code == 403
        assert client.delete(url, headers=admin).status_code == 428
        assert client.delete(url, headers=admin | {"If-Match": '"7"'}).status_code == 412
        assert client.delete(url, headers=admin | {"If-Match": '"1"'}).status_code == 204
        assert client.get(url, headers=admin).status_code == 404
        assert glossary_service.compiled(db) is None  # the next run uses the shipped glossary
        event = db.scalars(select(Event).where(Event.action == "glossary.deleted")).one()
        assert event.before is not None
        assert event.before["zh"] == ["压款"]
        assert event.after == {}


class TestTheEngineReceivesIt:
    def test_without_entries_the_shipped_glossary_is_used(self, db: Session) -> None:
        assert glossary_service.compiled(db) is None
        assert lexicon(db).terms is default_glossary()

    def test_entries_reach_the_lexicon_of_a_run(self, db: Session) -> None:
        db.add(GlossaryEntry(concept="receivables", zh=["压款"], en=[]))
        db.add(GlossaryEntry(concept="late_payment", zh=["押货款"], en=["late payment"]))
        db.flush()
        terms = lexicon(db).terms
        assert CONCEPT_PREFIX + "receivables" in terms.concepts("客户一直压款")
        assert CONCEPT_PREFIX + "late_payment" in terms.concepts("押货款 late payment")
        assert len(terms) == len(default_glossary()) + 1
        assert lexicon(db).labels["financing"][0] == "融资"
