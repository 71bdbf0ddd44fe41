"""The whole closed loop (交办→督办→反馈→评价) through HTTP, with real roles at every step.

An enterprise files a request; a coordinator triages it, runs a match and publishes it; the
first provider declines and the request is re-matched; the next accepts, visits, completes;
the enterprise is not satisfied, so it is re-matched again; the third provider's help
satisfies it and the plan closes. Along the way, nobody sees or touches what is not theirs,
and the audit trail and the numbers tell the same story.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.match_runs import runner
from app.models import ProviderKind, Role
from tests.app.conftest import Cast
from tests.factories import (
    auth_headers,
    make_policy,
    make_provider,
    make_user,
    rematch_declined,
    sessions_of_test,
)

API = "/api/v1"


def the_offer(client: TestClient, headers: dict[str, str], request_id: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = client.get(
        f"{API}/assignments",
        params={"request_id": request_id, "status": "offered"},
        headers=headers,
    ).json()["items"]
    assert len(rows) == 1, rows
    return rows[0]


def test_the_closed_loop(client: TestClient, cast: Cast, db: Session) -> None:
    third = make_provider(
        db,
        kind=ProviderKind.EXPERT,
        name="第三位专家",
        skills={"financing": 2},
        industries=["C"],
        capacity=2,
    )
    third_user = make_user(db, Role.EXPERT, provider_id=third.id)
    make_policy(db, title="专精特新贷款贴息", tiers=["specialised"], categories=["financing"])
    db.commit()
    people = {
        cast.expert.id: cast.headers(cast.expert_user),
        cast.platform.id: cast.headers(cast.platform_user),
        third.id: auth_headers(third_user, cast.settings.secret_key),
    }
    ent, coord = cast.headers(cast.ent_user), cast.headers(cast.coordinator)
    outsiders = [cast.headers(cast.other_ent_user), cast.headers(cast.other_coordinator)]

    # 1. the enterprise files; the coordinator triages
    filed = client.post(
        f"{API}/requests",
        json={
            "category": "financing",
            "title": "原材料涨价,流动资金紧张,需要银行贷款",
            "description": "订单有,但回款慢,急需过桥资金",
            "urgency": 5,
        },
        headers=ent,
    )
    assert filed.status_code == 201, filed.text
    request_id = filed.json()["id"]
    for outsider in outsiders:
        assert client.get(f"{API}/requests/{request_id}", headers=outsider).status_code == 404
    assert (
        client.post(f"{API}/requests/{request_id}/triage", json={}, headers=ent).status_code == 403
    )
    assert (
        client.post(f"{API}/requests/{request_id}/triage", json={}, headers=coord).status_code
        == 200
    )

    # 2. a match run for Fujian, computed by the worker, diffed and published
    assert (
        client.post(f"{API}/match-runs", json={"scope_region": "35"}, headers=ent).status_code
        == 403
    )
    assert (
        client.post(
            f"{API}/match-runs",
            json={"scope_region": "35"},
            headers=cast.headers(cast.other_coordinator),
        ).status_code
        == 403
    )
    queued = client.post(f"{API}/match-runs", json={"scope_region": "35"}, headers=coord)
    assert queued.status_code == 202, queued.text
    run_id = queued.json()["id"]
    assert runner.process_next(sessions_of_test(db), "e2e-worker") is not None
    run = client.get(f"{API}/match-runs/{run_id}", headers=coord).json()
    assert run["status"] == "succeeded"
    assert run["stats"]["matched"] == 1
    diff = client.get(f"{API}/match-runs/{run_id}/diff", headers=coord).json()
    assert [row["kind"] for row in diff["items"]] == ["new"]
    assert (
        client.post(
            f"{API}/match-runs/{run_id}/publish", headers=cast.headers(cast.other_coordinator)
        ).status_code
        == 404
    )
    published = client.post(f"{API}/match-runs/{run_id}/publish", headers=coord)
    assert published.status_code == 200, published.text

    # 3. the plan exists, recommends the policy, and is the enterprise's alone
    plan_id = client.get(f"{API}/requests/{request_id}", headers=ent).json()["plan_id"]
    plan = client.get(f"{API}/plans/{plan_id}", headers=ent).json()
    assert [p["title"] for p in plan["recommended_policies"]] == ["专精特新贷款贴息"]
    assert plan["assignments"][0]["breakdown"]["reason_en"]
    for outsider in outsiders:
        assert client.get(f"{API}/plans/{plan_id}", headers=outsider).status_code == 404

    # 4. the first provider declines; the request goes straight to the runner-up
    first = the_offer(client, coord, request_id)
    assert client.post(f"{API}/assignments/{first['id']}/accept", headers=ent).status_code == 403
    bystander = next(h for pid, h in people.items() if pid != first["provider_id"])
    assert (
        client.post(f"{API}/assignments/{first['id']}/accept", headers=bystander).status_code == 404
    )
    declined = client.post(
        f"{API}/assignments/{first['id']}/decline",
        json={"reason_code": "no_capacity"},
        headers=people[first["provider_id"]],
    )
    assert declined.status_code == 200, declined.text
    assert (
        client.get(f"{API}/requests/{request_id}", headers=people[first["provider_id"]]).status_code
        == 404
    )
    seen = client.get(f"{API}/requests/{request_id}", headers=ent).json()
    assert seen["rematch_pending"] is True  # the worker offers it to the next one shortly
    assert rematch_declined(db) == 1
    second = the_offer(client, coord, request_id)
    assert second["provider_id"] != first["provider_id"]
    helper = people[second["provider_id"]]

    # 5. the second accepts, visits, completes; the enterprise is not satisfied
    assert (
        client.post(f"{API}/assignments/{second['id']}/accept", headers=helper).status_code == 200
    )
    visit = client.post(
        f"{API}/plans/{plan_id}/follow-ups",
        json={
            "assignment_id": second["id"],
            "kind": "visit",
            "notes": "走访企业,梳理贷款材料",
            "progress": 50,
            "next_follow_up_date": "2026-12-15",
        },
        headers=helper,
    )
    assert visit.status_code == 201, visit.text
    assert (
        client.post(f"{API}/assignments/{second['id']}/complete", headers=helper).status_code == 200
    )
    unhappy = client.post(
        f"{API}/assignments/{second['id']}/feedback",
        json={"rating": 2, "satisfied": False, "comment": "贷款仍未落地"},
        headers=ent,
    )
    assert unhappy.status_code == 201

    # 6. re-matched to the one provider not yet tried, who solves it
    assert rematch_declined(db) == 1  # not satisfied: reopened for the worker's re-match
    third_offer = the_offer(client, coord, request_id)
    assert third_offer["provider_id"] not in (first["provider_id"], second["provider_id"])
    solver = people[third_offer["provider_id"]]
    for step in ("accept", "complete"):
        assert (
            client.post(f"{API}/assignments/{third_offer['id']}/{step}", headers=solver).status_code
            == 200
        )
    happy = client.post(
        f"{API}/assignments/{third_offer['id']}/feedback",
        json={"rating": 5, "satisfied": True, "comment": "贴息贷款已到账"},
        headers=ent,
    )
    assert happy.status_code == 201
    assert client.get(f"{API}/requests/{request_id}", headers=ent).json()["status"] == "resolved"

    # 7. the plan closes, by the coordinator only
    assert client.post(f"{API}/plans/{plan_id}/close", headers=ent).status_code == 403
    closed = client.post(f"{API}/plans/{plan_id}/close", headers=coord)
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"

    # 8. the audit trail and the numbers agree with what happened
    events = client.get(f"{API}/events", params={"limit": 200}, headers=coord).json()["items"]
    actions = [e["action"] for e in events]
    for action in (
        "request.submitted",
        "request.triaged",
        "assignment.declined",
        "assignment.accepted",
        "plan.follow_up_logged",
        "assignment.completed",
        "assignment.rated",
        "request.reopened",
        "request.resolved",
        "plan.closed",
    ):
        assert action in actions, action
    assert actions.count("assignment.offered") >= 2  # the two re-matches
    assert (
        client.get(f"{API}/events", headers=cast.headers(cast.other_coordinator)).json()["items"]
        == []
    )
    stats = client.get(f"{API}/stats", headers=coord).json()["total"]
    assert stats["funnel"] == {
        "submitted": 1,
        "matched": 1,
        "accepted": 1,
        "first_follow_up": 1,
        "resolved": 1,
    }
    assert abs(stats["rates"]["acceptance_rate"] - 2 / 3) < 1e-3
    assert stats["rates"]["satisfaction"]["mean_rating"] == 3.5
    assert client.get(f"{API}/stats", headers=ent).status_code == 403
