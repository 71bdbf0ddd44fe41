"""Issue 8 item 5: hand offers and re-assignments obey the solver's hard rules; a coordinator
overrides the region or minimum-score rule only with an audited reason; deactivating a
provider releases all its open work, pausing flags it on the supervision board."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.clock import today
from app.models import Assignment, AssignmentStatus, Event, HelpRequest, Provider
from tests.app.conftest import Cast
from tests.factories import make_provider, make_request, rematch_declined

URL = "/api/v1/assignments"


@pytest.fixture
def req(db: Session, cast: Cast) -> HelpRequest:
    request = make_request(db, cast.ent, status="triaged", category="financing", title="贷款")
    db.commit()
    return request


def hand_offer(
    client: TestClient, cast: Cast, req: HelpRequest, provider: Provider, **extra: Any
) -> Any:
    body = {"request_id": req.id, "provider_id": provider.id} | extra
    return client.post(URL, json=body, headers=cast.headers(cast.coordinator))


class TestHandOffer:
    @pytest.mark.parametrize(
        ("overrides", "rule"),
        [
            ({"skills": {"legal_ip": 3}}, "category"),
            ({"paused_from_date": date(2000, 1, 1)}, "inactive"),
            ({"active": False}, "inactive"),
            ({"capacity": 0}, "capacity"),
            ({"regions": ["41"], "remote_ok": False}, "region"),
        ],
    )
    def test_a_pair_the_solver_would_refuse_is_409_naming_the_rule(
        self,
        client: TestClient,
        db: Session,
        cast: Cast,
        req: HelpRequest,
        overrides: dict[str, Any],
        rule: str,
    ) -> None:
        provider = make_provider(db, **overrides)
        db.commit()
        r = hand_offer(client, cast, req, provider)
        assert r.status_code == 409, r.text
        assert r.json()["field"] == "provider_id"
        assert r.json()["rule"] == rule

    def test_a_region_override_needs_a_reason_and_is_audited(
        self, client: TestClient, db: Session, cast: Cast, req: HelpRequest
    ) -> None:
        far = make_provider(db, regions=["41"], remote_ok=False)
        db.commit()
        r = hand_offer(client, cast, req, far, override_rules=["region"])
        assert r.status_code == 422
        assert r.json()["field"] == "override_reason"
        r = hand_offer(
            client, cast, req, far, override_rules=["region"], override_reason="企业点名要求"
        )
        assert r.status_code == 201, r.text
        event = db.scalars(select(Event).where(Event.action == "assignment.rules_overridden")).one()
        assert event.after == {"rules": ["region"], "reason": "企业点名要求"}
        assert event.actor_id == cast.coordinator.id

    def test_only_region_and_min_score_can_be_overridden(
        self, client: TestClient, db: Session, cast: Cast, req: HelpRequest
    ) -> None:
        unskilled = make_provider(db, skills={"legal_ip": 3})
        db.commit()
        r = hand_offer(
            client, cast, req, unskilled, override_rules=["category"], override_reason="x"
        )
        assert r.status_code == 422
        r = hand_offer(client, cast, req, unskilled, override_rules=["region"], override_reason="x")
        assert r.status_code == 409
        assert r.json()["rule"] == "category"

    def test_an_untriaged_request_is_not_offered_by_hand(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        submitted = make_request(db, cast.ent, status="submitted", category="financing")
        db.commit()
        r = hand_offer(client, cast, submitted, cast.expert)
        assert r.status_code == 409
        assert r.json()["field"] == "request_id"

    def test_a_reassignment_obeys_the_same_rules(
        self, client: TestClient, db: Session, cast: Cast, req: HelpRequest
    ) -> None:
        paused = make_provider(db, paused_from_date=today() - timedelta(days=1))
        db.commit()
        first = hand_offer(client, cast, req, cast.expert).json()
        r = client.post(
            f"{URL}/{first['id']}/reassign",
            json={"provider_id": paused.id, "reason": "换人"},
            headers=cast.headers(cast.coordinator),
        )
        assert r.status_code == 409
        assert r.json()["rule"] == "inactive"
        still = db.get(Assignment, first["id"], populate_existing=True)
        assert still is not None
        assert still.status == AssignmentStatus.OFFERED  # nothing half-done


class TestUnavailableProviders:
    def _accepted(self, client: TestClient, cast: Cast, req: HelpRequest) -> dict[str, Any]:
        a: dict[str, Any] = hand_offer(client, cast, req, cast.expert).json()
        r = client.post(f"{URL}/{a['id']}/accept", headers=cast.headers(cast.expert_user))
        assert r.status_code == 200, r.text
        return a

    def _patch(self, client: TestClient, cast: Cast, **body: Any) -> Any:
        url = f"/api/v1/providers/{cast.expert.id}"
        headers = cast.headers(cast.coordinator)
        etag = client.get(url, headers=headers).headers.get("ETag", "")
        return client.patch(url, json=body, headers=headers | {"If-Match": etag})

    def test_deactivation_releases_accepted_work_and_rematches_it(
        self, client: TestClient, db: Session, cast: Cast, req: HelpRequest
    ) -> None:
        accepted = self._accepted(client, cast, req)
        assert self._patch(client, cast, active=False).status_code == 200
        old = db.get(Assignment, accepted["id"], populate_existing=True)
        assert old is not None
        assert old.status == AssignmentStatus.WITHDRAWN
        assert rematch_declined(db) == 1  # released work goes to the worker's re-match
        new = db.scalars(
            select(Assignment).where(
                Assignment.request_id == req.id, Assignment.status == AssignmentStatus.OFFERED
            )
        ).one()
        assert new.provider_id != cast.expert.id  # the engine's best remaining provider

    def test_a_pause_keeps_accepted_work_and_flags_it_on_the_board(
        self, client: TestClient, db: Session, cast: Cast, req: HelpRequest
    ) -> None:
        accepted = self._accepted(client, cast, req)
        r = self._patch(client, cast, paused_from_date=str(today() - timedelta(days=1)))
        assert r.status_code == 200, r.text
        still = db.get(Assignment, accepted["id"], populate_existing=True)
        assert still is not None
        assert still.status == AssignmentStatus.ACCEPTED
        board = client.get("/api/v1/supervision", headers=cast.headers(cast.coordinator)).json()
        paused = board["paused_work"]
        assert [w["assignment_id"] for w in paused["items"]] == [accepted["id"]]
        assert paused["total"] == 1
        other = client.get("/api/v1/supervision", headers=cast.headers(cast.other_coordinator))
        assert other.json()["paused_work"]["items"] == []
