"""Team requests through the API: ask for several providers, get them in one run, keep the
team when one member declines (only that seat is re-matched).

Status rule under test (documented in README "Team requests"): a team request is
``matched`` once every seat holds an open assignment; while a seat is empty it stays
``triaged``, so the next run or re-match fills only the empty seats.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import (
    Assignment,
    AssignmentStatus,
    HelpRequest,
    Provider,
    RequestStatus,
    Role,
    User,
)
from tests.app.conftest import Cast
from tests.app.test_match_runs_api import work
from tests.factories import fetch, make_provider, make_request, make_user, rematch_declined

REQUESTS = "/api/v1/requests"
RUNS = "/api/v1/match-runs"
ASSIGNMENTS = "/api/v1/assignments"


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "category": "legal_ip",
        "title": "债务重组,需要律师和融资专家",
        "urgency": 4,
    } | overrides


class TestIntake:
    def test_a_request_asks_for_a_team(self, client: TestClient, cast: Cast) -> None:
        r = client.post(
            REQUESTS, json=body(providers_wanted=3), headers=cast.headers(cast.ent_user)
        )
        assert r.status_code == 201, r.text
        assert r.json()["providers_wanted"] == 3
        plain = client.post(REQUESTS, json=body(), headers=cast.headers(cast.ent_user))
        assert plain.json()["providers_wanted"] == 1

    @pytest.mark.parametrize("value", [0, 6, "two", 2.5])
    def test_team_size_outside_one_to_five_is_422_naming_the_field(
        self, client: TestClient, cast: Cast, value: object
    ) -> None:
        r = client.post(
            REQUESTS, json=body(providers_wanted=value), headers=cast.headers(cast.ent_user)
        )
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["field"] == "providers_wanted"

    def test_the_size_is_editable_and_checked(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        request = make_request(db, cast.ent, status="submitted")
        db.commit()
        headers = cast.headers(cast.ent_user) | {"If-Match": "*"}
        r = client.patch(f"{REQUESTS}/{request.id}", json={"providers_wanted": 2}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["providers_wanted"] == 2
        bad = client.patch(
            f"{REQUESTS}/{request.id}", json={"providers_wanted": 9}, headers=headers
        )
        assert bad.status_code == 422
        assert bad.json()["field"] == "providers_wanted"


def _lawyers(db: Session, n: int) -> list[Provider]:
    return [
        make_provider(
            db,
            skills={"legal_ip": 3 - i % 2},
            expertise="债务重组 法律 专利 商标 律师",
            capacity=2,
        )
        for i in range(n)
    ]


def _run_and_publish(client: TestClient, db: Session, cast: Cast) -> dict[str, Any]:
    staff = cast.headers(cast.coordinator)
    run = client.post(RUNS, json={"scope_region": "35"}, headers=staff)
    assert run.status_code == 202, run.text
    processed = work(db)
    assert processed is not None
    assert processed.outcome == "succeeded"
    published = client.post(f"{RUNS}/{run.json()['id']}/publish", headers=staff)
    assert published.status_code == 200, published.text
    body: dict[str, Any] = published.json()
    return body


def _open_members(db: Session, request_id: int) -> list[Assignment]:
    db.expire_all()
    return list(
        db.scalars(
            select(Assignment)
            .where(
                Assignment.request_id == request_id,
                Assignment.status.in_([AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED]),
            )
            .order_by(Assignment.provider_id)
        )
    )


def _status(db: Session, request_id: int) -> RequestStatus:
    db.expire_all()
    return db.scalars(select(HelpRequest.status).where(HelpRequest.id == request_id)).one()


class TestTeamService:
    def test_one_run_offers_the_whole_team_and_the_request_is_matched(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        request = make_request(
            db, cast.ent, category="legal_ip", status="triaged", providers_wanted=2
        )
        _lawyers(db, 3)
        db.commit()
        done = _run_and_publish(client, db, cast)
        members = _open_members(db, request.id)
        member_ids = {m.provider_id for m in members}
        assert len(members) == 2
        assert len(member_ids) == 2
        assert {m.id for m in members} <= set(done["offered"])
        assert all(
            sorted(m.breakdown["team"]) == sorted(x.provider_id for x in members) for m in members
        )
        assert _status(db, request.id) == RequestStatus.MATCHED
        (plan_id,) = done["plan_ids"]
        plan = client.get(f"/api/v1/plans/{plan_id}", headers=cast.headers(cast.ent_user)).json()
        (shown,) = [r for r in plan["requests"] if r["id"] == request.id]
        assert shown["providers_wanted"] == 2
        team = {a["provider_id"] for a in plan["assignments"] if a["request_id"] == request.id}
        assert team == member_ids

    def test_a_team_short_of_providers_stays_triaged_for_the_next_run(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        request = make_request(
            db, cast.ent, category="legal_ip", status="triaged", providers_wanted=3
        )
        _lawyers(db, 2)
        db.commit()
        done = _run_and_publish(client, db, cast)
        assert done["run"]["stats"]["short_teams"] == 1
        assert len(_open_members(db, request.id)) == 2
        assert _status(db, request.id) == RequestStatus.TRIAGED
        third = _lawyers(db, 1)[0]
        db.commit()
        _run_and_publish(client, db, cast)  # fills only the empty seat
        members = _open_members(db, request.id)
        assert len(members) == 3
        assert third.id in {m.provider_id for m in members}
        assert _status(db, request.id) == RequestStatus.MATCHED

    def test_a_declining_member_is_replaced_and_the_others_stay(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        request = make_request(
            db, cast.ent, category="legal_ip", status="triaged", providers_wanted=2
        )
        lawyers = _lawyers(db, 3)
        users: dict[int, User] = {
            p.id: make_user(db, Role.EXPERT, provider_id=p.id) for p in lawyers
        }
        db.commit()
        _run_and_publish(client, db, cast)
        leaving, staying = _open_members(db, request.id)
        r = client.post(
            f"{ASSIGNMENTS}/{leaving.id}/decline",
            json={"reason_code": "no_capacity", "reason": "出差"},
            headers=cast.headers(users[leaving.provider_id]),
        )
        assert r.status_code == 200, r.text
        assert rematch_declined(db) == 1
        members = _open_members(db, request.id)
        assert staying.id in {m.id for m in members}  # the same row: never re-decided
        assert leaving.provider_id not in {m.provider_id for m in members}
        assert len(members) == 2
        (new,) = [m for m in members if m.id != staying.id]
        assert new.origin == "rematch"
        assert _status(db, request.id) == RequestStatus.MATCHED

    def test_a_coordinator_adds_a_member_by_hand_but_never_the_same_one_twice(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        request = make_request(
            db, cast.ent, category="financing", status="triaged", providers_wanted=2
        )
        db.commit()
        staff = cast.headers(cast.coordinator)
        first = client.post(
            ASSIGNMENTS,
            json={"request_id": request.id, "provider_id": cast.expert.id},
            headers=staff,
        )
        assert first.status_code == 201, first.text
        assert _status(db, request.id) == RequestStatus.TRIAGED  # one seat still empty
        twice = client.post(
            ASSIGNMENTS,
            json={"request_id": request.id, "provider_id": cast.expert.id},
            headers=staff,
        )
        assert twice.status_code == 409
        second = client.post(
            ASSIGNMENTS,
            json={"request_id": request.id, "provider_id": cast.platform.id},
            headers=staff,
        )
        assert second.status_code == 201, second.text
        assert _status(db, request.id) == RequestStatus.MATCHED
        full = client.post(
            ASSIGNMENTS,
            json={"request_id": request.id, "provider_id": _lawyers(db, 1)[0].id},
            headers=staff,
        )
        assert full.status_code == 409


def test_help_request_column_defaults_to_one(db: Session, cast: Cast) -> None:
    request = make_request(db, cast.ent)
    db.commit()
    assert fetch(db, HelpRequest, request.id).providers_wanted == 1


def test_the_draft_diff_lists_the_proposed_team(
    client: TestClient, db: Session, cast: Cast
) -> None:
    request = make_request(db, cast.ent, category="legal_ip", status="triaged", providers_wanted=2)
    _lawyers(db, 3)
    db.commit()
    staff = cast.headers(cast.coordinator)
    run = client.post(RUNS, json={"scope_region": "35"}, headers=staff).json()
    work(db)
    rows = client.get(f"{RUNS}/{run['id']}/diff", headers=staff).json()["items"]
    (row,) = [r for r in rows if r["request_id"] == request.id]
    assert row["kind"] == "new"
    assert len(set(row["proposed_team_provider_ids"])) == 2


def test_a_bigger_team_sends_a_matched_request_back_to_triage(
    client: TestClient, db: Session, cast: Cast
) -> None:
    request = make_request(db, cast.ent, category="financing", status="triaged")
    db.commit()
    staff = cast.headers(cast.coordinator)
    made = client.post(
        ASSIGNMENTS, json={"request_id": request.id, "provider_id": cast.expert.id}, headers=staff
    )
    assert made.status_code == 201, made.text
    assert _status(db, request.id) == RequestStatus.MATCHED
    r = client.patch(
        f"{REQUESTS}/{request.id}",
        json={"providers_wanted": 2},
        headers=staff | {"If-Match": "*"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "triaged"
    smaller = client.patch(
        f"{REQUESTS}/{request.id}", json={"providers_wanted": 1}, headers=staff | {"If-Match": "*"}
    )
    assert smaller.status_code == 200  # one open member: a team of one is complete
    assert smaller.json()["status"] == "matched"
