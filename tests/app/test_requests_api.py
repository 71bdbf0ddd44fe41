from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.events.service import snapshot
from app.models import Assignment, AssignmentOrigin, AssignmentStatus, Event, HelpRequest
from tests.app.conftest import Cast
from tests.factories import make_request

URL = "/api/v1/requests"


def body(**overrides: Any) -> dict[str, Any]:
    return {"category": "digital_transformation", "title": "上ERP系统", "urgency": 3} | overrides


@pytest.fixture
def req(db: Session, cast: Cast) -> HelpRequest:
    request = make_request(db, cast.ent, status="submitted")
    db.commit()
    return request


def offer(db: Session, request: HelpRequest, provider_id: int) -> None:
    db.add(
        Assignment(
            request_id=request.id,
            provider_id=provider_id,
            origin=AssignmentOrigin.MANUAL,
            status=AssignmentStatus.OFFERED,
        )
    )
    db.commit()


class TestSubmit:
    def test_enterprise_files_for_itself(self, client: TestClient, cast: Cast) -> None:
        r = client.post(URL, json=body(), headers=cast.headers(cast.ent_user))
        assert r.status_code == 201, r.text
        assert r.json()["enterprise_id"] == cast.ent.id
        assert r.json()["status"] == "submitted"
        assert r.json()["severity"] == "major"  # the category's default

    def test_the_answer_and_the_event_are_the_stored_row(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        """Filed by a statement, not an ORM flush: the 201 body is what a read of the request
        answers, and the event's snapshot is the stored row (defaults, version, timestamps)."""
        ent = cast.headers(cast.ent_user)
        wanted = (date.today() + timedelta(days=30)).isoformat()
        r = client.post(URL, json=body(description="详情", wanted_by_date=wanted), headers=ent)
        assert r.status_code == 201, r.text
        read = client.get(f"{URL}/{r.json()['id']}", headers=ent).json()
        assert r.json() == {k: v for k, v in read.items() if k != "unmatched"}
        assert r.json()["version"] == 1
        stored = db.get(HelpRequest, r.json()["id"])
        assert stored is not None
        event = db.scalars(
            select(Event).where(Event.action == "request.submitted", Event.entity_id == stored.id)
        ).one()
        assert (event.entity_type, event.region_code) == ("help_requests", cast.ent.region_code)
        assert event.after == snapshot(stored)
        assert list(event.after) == list(snapshot(stored))

    def test_enterprise_cannot_file_for_another(self, client: TestClient, cast: Cast) -> None:
        r = client.post(
            URL, json=body(enterprise_id=cast.other_ent.id), headers=cast.headers(cast.ent_user)
        )
        assert r.status_code == 403
        assert r.json()["field"] == "enterprise_id"

    @pytest.mark.parametrize(
        ("role", "status"),
        [
            ("admin", 201),
            ("coordinator", 201),
            ("other_coordinator", 404),
            ("expert", 403),
            ("platform", 403),
        ],
    )
    def test_staff_file_on_behalf_in_their_regions(
        self, client: TestClient, cast: Cast, role: str, status: int
    ) -> None:
        r = client.post(
            URL, json=body(enterprise_id=cast.ent.id), headers=cast.headers(cast.by_role()[role])
        )
        assert r.status_code == status, r.text

    def test_staff_must_name_the_enterprise(self, client: TestClient, cast: Cast) -> None:
        r = client.post(URL, json=body(), headers=cast.headers(cast.coordinator))
        assert r.status_code == 422
        assert r.json()["field"] == "enterprise_id"

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("urgency", 0),
            ("urgency", 6),
            ("category", "astrology"),
            ("category", "Bad Key"),
            ("title", "x"),
            ("description", "长" * 5001),
            ("wanted_by_date", (date.today() - timedelta(days=2)).isoformat()),
        ],
    )
    def test_bad_input_is_422_and_stores_nothing(
        self, client: TestClient, cast: Cast, db: Session, field: str, value: Any
    ) -> None:
        r = client.post(URL, json=body(**{field: value}), headers=cast.headers(cast.ent_user))
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field
        assert db.scalar(select(func.count()).select_from(HelpRequest)) == 0


class TestVisibility:
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
    def test_read(
        self, client: TestClient, cast: Cast, req: HelpRequest, role: str, status: int
    ) -> None:
        r = client.get(f"{URL}/{req.id}", headers=cast.headers(cast.by_role()[role]))
        assert r.status_code == status

    def test_offered_provider_sees_request_and_enterprise(
        self, client: TestClient, cast: Cast, db: Session, req: HelpRequest
    ) -> None:
        offer(db, req, cast.expert.id)
        headers = cast.headers(cast.expert_user)
        assert client.get(f"{URL}/{req.id}", headers=headers).status_code == 200
        assert client.get(f"/api/v1/enterprises/{cast.ent.id}", headers=headers).status_code == 200
        assert (
            client.get(f"/api/v1/enterprises/{cast.other_ent.id}", headers=headers).status_code
            == 404
        )
        # ...and the enterprise now sees its provider, but not the other one
        ent_headers = cast.headers(cast.ent_user)
        assert (
            client.get(f"/api/v1/providers/{cast.expert.id}", headers=ent_headers).status_code
            == 200
        )
        assert (
            client.get(f"/api/v1/providers/{cast.platform.id}", headers=ent_headers).status_code
            == 404
        )

    def test_list_filters(
        self, client: TestClient, cast: Cast, db: Session, req: HelpRequest
    ) -> None:
        make_request(
            db,
            cast.other_ent,
            category="legal_ip",
            urgency=2,
            title="商标被抢注",
            status="submitted",
        )
        db.commit()
        headers = cast.headers(cast.admin)

        def ids(**params: Any) -> set[int]:
            r = client.get(URL, params=params, headers=headers)
            assert r.status_code == 200, r.text
            return {x["enterprise_id"] for x in r.json()["items"]}

        assert ids() == {cast.ent.id, cast.other_ent.id}
        assert ids(region="35") == {cast.ent.id}
        assert ids(category="legal_ip") == {cast.other_ent.id}
        assert ids(min_urgency=4) == {cast.ent.id}
        assert ids(status="submitted", tier="specialised", industry="C17") == {
            cast.ent.id,
            cast.other_ent.id,
        }
        assert ids(q="贷款") == {cast.ent.id}
        assert ids(q="100%_") == set()


class TestChanges:
    def test_enterprise_edits_while_submitted(
        self, client: TestClient, cast: Cast, req: HelpRequest
    ) -> None:
        r = client.patch(
            f"{URL}/{req.id}",
            json={"urgency": 5},
            headers=cast.headers(cast.ent_user) | {"If-Match": "*"},
        )
        assert r.status_code == 200
        assert r.json()["urgency"] == 5

    @pytest.mark.parametrize(
        ("role", "status"), [("other_enterprise", 404), ("expert", 404), ("other_coordinator", 404)]
    )
    def test_others_cannot_edit(
        self, client: TestClient, cast: Cast, req: HelpRequest, role: str, status: int
    ) -> None:
        r = client.patch(
            f"{URL}/{req.id}",
            json={"urgency": 5},
            headers=cast.headers(cast.by_role()[role]) | {"If-Match": "*"},
        )
        assert r.status_code == status

    def test_assigned_provider_may_read_but_not_edit(
        self, client: TestClient, cast: Cast, db: Session, req: HelpRequest
    ) -> None:
        offer(db, req, cast.expert.id)
        r = client.patch(
            f"{URL}/{req.id}",
            json={"urgency": 5},
            headers=cast.headers(cast.expert_user) | {"If-Match": "*"},
        )
        assert r.status_code == 403

    def test_triage_then_enterprise_withdraws(
        self, client: TestClient, cast: Cast, req: HelpRequest
    ) -> None:
        t = client.post(
            f"{URL}/{req.id}/triage",
            json={"urgency": 5, "category": "cost_reduction"},
            headers=cast.headers(cast.coordinator),
        )
        assert t.status_code == 200, t.text
        assert t.json()["status"] == "triaged"
        assert t.json()["category"] == "cost_reduction"
        again = client.post(
            f"{URL}/{req.id}/triage", json={}, headers=cast.headers(cast.coordinator)
        )
        assert again.status_code == 409
        w = client.post(f"{URL}/{req.id}/withdraw", headers=cast.headers(cast.ent_user))
        assert w.status_code == 200
        assert w.json()["status"] == "withdrawn"
        assert (
            client.post(f"{URL}/{req.id}/withdraw", headers=cast.headers(cast.ent_user)).status_code
            == 409
        )
        assert (
            client.patch(
                f"{URL}/{req.id}",
                json={"urgency": 1},
                headers=cast.headers(cast.coordinator) | {"If-Match": "*"},
            ).status_code
            == 409
        )

    @pytest.mark.parametrize(
        ("role", "status"),
        [("enterprise", 403), ("expert", 404), ("other_coordinator", 404), ("admin", 200)],
    )
    def test_who_triages(
        self, client: TestClient, cast: Cast, req: HelpRequest, role: str, status: int
    ) -> None:
        r = client.post(
            f"{URL}/{req.id}/triage", json={}, headers=cast.headers(cast.by_role()[role])
        )
        assert r.status_code == status
