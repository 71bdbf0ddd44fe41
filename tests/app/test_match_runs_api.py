"""Match runs through the API: trigger, worker, draft, diff, pins, publish, revert.

The worker is driven synchronously (``runner.process_next``) on the test's own session, so
each test stays inside its rolled-back transaction on both databases.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.assignments import encode
from app.common.clock import utc_now
from app.match_runs import runner
from app.match_runs.repository import QUEUE_PATIENCE
from app.models import (
    Assignment,
    AssignmentStatus,
    Enterprise,
    Event,
    Exclusion,
    HelpRequest,
    MatchRun,
    Plan,
    Provider,
    ProviderConflict,
    RequestStatus,
    Role,
    User,
    WebhookDelivery,
    WebhookSubscription,
)
from tests.app.conftest import Cast
from tests.factories import (
    fetch,
    make_enterprise,
    make_provider,
    make_request,
    make_user,
    rematch_declined,
    sessions_of_test,
)

URL = "/api/v1/match-runs"


@dataclass
class Scene:
    """Four export requests in Fujian for three export slots; one more in Henan.

    ``narrow`` declared a conflict with ``ent2``, so it never serves ``ent2``'s request.
    """

    cast: Cast
    ent2: Enterprise
    wide: Provider  # export level 3, capacity 2
    narrow: Provider  # export level 2, capacity 1
    wide_user: User
    requests: list[HelpRequest]
    far: HelpRequest

    def staff(self) -> dict[str, str]:
        return self.cast.headers(self.cast.coordinator)


@pytest.fixture
def scene(db: Session, cast: Cast) -> Scene:
    ent2 = make_enterprise(db, region_code="350583", name="南安市测试石材有限公司")
    export = {"skills": {"export": 3}, "expertise": "外贸 出口 跨境电商 export"}
    wide = make_provider(db, capacity=2, **export)
    narrow = make_provider(db, capacity=1, **(export | {"skills": {"export": 2}}))
    db.add(ProviderConflict(provider_id=narrow.id, enterprise_id=ent2.id, created_at=utc_now()))
    ask = {"category": "export", "title": "出口订单下滑,需要开拓海外市场", "status": "triaged"}
    requests = [make_request(db, cast.ent, urgency=u, **ask) for u in (5, 4, 3)]
    requests.append(make_request(db, ent2, urgency=5, **ask))
    far = make_request(db, cast.other_ent, **ask)
    wide_user = make_user(db, Role.EXPERT, provider_id=wide.id)
    db.commit()
    return Scene(cast, ent2, wide, narrow, wide_user, requests, far)


def work(db: Session) -> runner.Processed | None:
    return runner.process_next(sessions_of_test(db), "test-worker")


def trigger(client: TestClient, headers: dict[str, str], **body: Any) -> Response:
    response: Response = client.post(URL, json={"scope_region": "35"} | body, headers=headers)
    return response


def drafted(client: TestClient, db: Session, scene: Scene, **body: Any) -> dict[str, Any]:
    """Trigger and execute a run; returns the finished run as the API shows it."""
    r = trigger(client, scene.staff(), **body)
    assert r.status_code == 202, r.text
    processed = work(db)
    assert processed is not None
    assert processed.outcome == "succeeded"
    run: dict[str, Any] = client.get(f"{URL}/{r.json()['id']}", headers=scene.staff()).json()
    return run


def proposals(db: Session, run_id: int) -> list[Assignment]:
    return list(
        db.scalars(
            select(Assignment).where(Assignment.match_run_id == run_id).order_by(Assignment.id)
        )
    )


def offer_by_hand(db: Session, request_id: int, provider_id: int) -> None:
    """An open assignment made outside the run (the rules are not the point here)."""
    db.add(
        Assignment(
            request_id=request_id,
            provider_id=provider_id,
            origin="manual",
            status=AssignmentStatus.OFFERED,
        )
    )
    db.commit()


def event_count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Event)) or 0


class TestTrigger:
    def test_coordinator_queues_a_run_of_their_region(
        self, client: TestClient, scene: Scene
    ) -> None:
        r = trigger(client, scene.staff(), scope_categories=["export"])
        assert r.status_code == 202, r.text
        run = r.json()
        assert run["status"] == "queued"
        assert run["stats"] is None
        assert run["weights"]["top_k"] == 20  # every knob recorded, defaults filled in
        assert r.headers["location"] == f"{URL}/{run['id']}"

    @pytest.mark.parametrize(
        ("role", "region", "status"),
        [
            ("enterprise", "35", 403),
            ("expert", "35", 403),
            ("platform", "35", 403),
            ("other_coordinator", "35", 403),
            ("coordinator", "", 403),
            ("coordinator", "3505", 202),
            ("admin", "", 202),
        ],
    )
    def test_who_may_trigger_which_scope(
        self, client: TestClient, scene: Scene, role: str, region: str, status: int
    ) -> None:
        user = scene.cast.by_role()[role]
        r = trigger(client, scene.cast.headers(user), scope_region=region)
        assert r.status_code == status, r.text

    @pytest.mark.parametrize(
        ("weights", "field"),
        [
            ({"top_k": 0}, "weights.top_k"),
            ({"fairness": 1.5}, "weights.fairness"),
            ({"skill": -1}, "weights.skill"),
            ({"top_k": 2.5}, "weights.top_k"),
            ({"bogus": 1}, "weights.bogus"),
        ],
    )
    def test_bad_weights_are_422_naming_the_knob(
        self, client: TestClient, scene: Scene, weights: dict[str, Any], field: str
    ) -> None:
        r = trigger(client, scene.staff(), weights=weights)
        assert r.status_code == 422
        assert r.json()["field"] == field

    def test_unknown_category_is_422(self, client: TestClient, scene: Scene) -> None:
        r = trigger(client, scene.staff(), scope_categories=["astrology"])
        assert r.status_code == 422
        assert r.json()["field"] == "scope_categories"

    def test_requests_outside_the_coordinators_regions_are_422(
        self, client: TestClient, scene: Scene
    ) -> None:
        r = trigger(client, scene.staff(), scope_request_ids=[scene.far.id])
        assert r.status_code == 422
        assert r.json()["field"] == "scope_request_ids"

    def test_second_trigger_of_a_busy_scope_is_409_naming_the_running_run(
        self, client: TestClient, scene: Scene
    ) -> None:
        first = trigger(client, scene.staff()).json()
        again = trigger(client, scene.staff(), scope_categories=["export"])
        assert again.status_code == 409
        assert again.json()["running_run_id"] == first["id"]
        assert trigger(client, scene.staff(), scope_region="3505").status_code == 202

    def test_the_scope_is_free_again_once_the_run_finished(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        drafted(client, db, scene)
        assert trigger(client, scene.staff()).status_code == 202

    def test_idempotency_key_replays_the_same_run(self, client: TestClient, scene: Scene) -> None:
        headers = scene.staff() | {"Idempotency-Key": "run-35-monday"}
        first = trigger(client, headers)
        second = trigger(client, headers)
        assert second.status_code == 202
        assert second.json()["id"] == first.json()["id"]


class TestWorker:
    def test_nothing_queued_means_nothing_processed(self, db: Session, scene: Scene) -> None:
        assert work(db) is None

    def test_run_reports_statistics_and_shortages(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        assert run["status"] == "succeeded"
        assert run["stage"] == "done"
        assert run["attempts"] == 1
        stats = run["stats"]
        assert stats["requests"] == 4  # Henan's request is out of scope
        assert stats["matched"] == 3  # three export slots
        assert stats["unmatched"] == 1
        assert sum(stats["unmatched_by_reason"].values()) == 1
        assert stats["candidate_pairs"] >= 3
        assert stats["gap"] == pytest.approx(0.0, abs=1e-6)
        assert {"snapshot", "supply", "solve", "write", "total"} <= set(stats["seconds"])
        assert any(s["category"] == "export" and s["shortfall"] >= 1 for s in stats["shortages"])
        assert all(s["message_zh"] and s["message_en"] for s in stats["shortages"])

    def test_proposals_respect_capacity_and_hard_rules(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        rows = proposals(db, run["id"])
        assert len(rows) == 3
        assert {a.status for a in rows} == {AssignmentStatus.PROPOSED}
        assert {a.origin for a in rows} == {"match_run"}
        load = Counter(a.provider_id for a in rows)
        assert load[scene.wide.id] <= scene.wide.capacity
        assert load[scene.narrow.id] <= scene.narrow.capacity
        ent2_request = scene.requests[3].id
        assert all(
            not (a.request_id == ent2_request and a.provider_id == scene.narrow.id) for a in rows
        )
        assert scene.far.id not in {a.request_id for a in rows}
        assert len({a.request_id for a in rows}) == 3  # one provider per request
        assert all(a.breakdown["reason_en"] and a.breakdown["reason_zh"] for a in rows)
        # a draft is the coordinators' business: the provider does not see it yet
        mine = client.get("/api/v1/assignments", headers=scene.cast.headers(scene.wide_user))
        assert mine.json()["items"] == []

    def test_an_impossible_pin_fails_the_run_with_the_reason(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        pinned = proposals(db, run["id"])[0]
        pinned.locked = True
        fetch(db, Provider, pinned.provider_id).active = False
        db.commit()
        second = trigger(client, scene.staff()).json()
        processed = work(db)
        assert processed is not None
        assert processed.outcome == "failed"
        failed = client.get(f"{URL}/{second['id']}", headers=scene.staff()).json()
        assert failed["status"] == "failed"
        assert "Infeasible" in failed["error"]
        audited = db.scalars(select(Event).where(Event.action == "match_run.failed")).one()
        assert audited.entity_id == second["id"]
        assert audited.after is not None
        assert "Infeasible" in audited.after["error"]


class TestVisibility:
    def test_runs_outside_a_coordinators_regions_do_not_exist_for_them(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        other = scene.cast.headers(scene.cast.other_coordinator)
        for path in ("", "/diff"):
            assert client.get(f"{URL}/{run['id']}{path}", headers=other).status_code == 404
        assert client.post(f"{URL}/{run['id']}/publish", headers=other).status_code == 404
        assert client.get(URL, headers=other).json()["items"] == []
        admin = scene.cast.headers(scene.cast.admin)
        assert [r["id"] for r in client.get(URL, headers=admin).json()["items"]] == [run["id"]]

    @pytest.mark.parametrize("role", ["enterprise", "expert"])
    def test_enterprises_and_providers_cannot_read_runs(
        self, client: TestClient, db: Session, scene: Scene, role: str
    ) -> None:
        run = drafted(client, db, scene)
        headers = scene.cast.headers(scene.cast.by_role()[role])
        assert client.get(f"{URL}/{run['id']}", headers=headers).status_code == 403

    def test_list_filters_by_status(self, client: TestClient, db: Session, scene: Scene) -> None:
        done = drafted(client, db, scene)
        queued = trigger(client, scene.staff(), scope_region="3505").json()
        got = client.get(URL, params={"status": "queued"}, headers=scene.staff()).json()
        assert [r["id"] for r in got["items"]] == [queued["id"]]
        assert done["id"] != queued["id"]


class TestDiff:
    def test_a_first_draft_is_all_new_plus_the_unmatched(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        diff = client.get(f"{URL}/{run['id']}/diff", headers=scene.staff()).json()
        assert diff["counts"] == {"new": 3, "unmatched": 1}
        unmatched = [row for row in diff["items"] if row["kind"] == "unmatched"]
        assert unmatched[0]["explanation_en"]
        assert unmatched[0]["explanation_zh"]
        assert all(row["explanation_en"] for row in diff["items"] if row["kind"] == "new")

    def test_offers_made_meanwhile_show_as_same_changed_or_dropped(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        by_request = {a.request_id: a for a in proposals(db, run["id"])}
        same, changed = sorted(by_request)[:2]
        dropped = next(r.id for r in scene.requests if r.id not in by_request)
        platform = scene.cast.platform.id
        for request_id, provider_id in [
            (same, by_request[same].provider_id),
            (changed, platform),
            (dropped, platform),
        ]:
            offer_by_hand(db, request_id, provider_id)
        diff = client.get(f"{URL}/{run['id']}/diff", headers=scene.staff()).json()
        kinds = {row["request_id"]: row["kind"] for row in diff["items"]}
        assert kinds[same] == "same"
        assert kinds[changed] == "changed"
        assert kinds[dropped] == "dropped"
        only = client.get(
            f"{URL}/{run['id']}/diff", params={"kind": "changed"}, headers=scene.staff()
        ).json()
        assert [row["request_id"] for row in only["items"]] == [changed]
        assert only["items"][0]["live_provider_id"] == platform

    def test_a_queued_run_has_no_diff_yet(self, client: TestClient, scene: Scene) -> None:
        run = trigger(client, scene.staff()).json()
        assert client.get(f"{URL}/{run['id']}/diff", headers=scene.staff()).status_code == 409


class TestRerun:
    def test_a_pin_survives_a_rerun_and_the_old_draft_is_replaced(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        first = drafted(client, db, scene)
        pinned = proposals(db, first["id"])[-1]
        r = client.post(
            f"/api/v1/assignments/{pinned.id}/lock", json={"locked": True}, headers=scene.staff()
        )
        assert r.status_code == 200, r.text
        second = drafted(client, db, scene, weights={"skill": 0.05, "text": 0.9})
        assert second["stats"]["pinned"] == 1
        assert second["stats"]["superseded_run_ids"] == [first["id"]]
        kept = {a.request_id: a for a in proposals(db, second["id"])}
        assert kept[pinned.request_id].provider_id == pinned.provider_id
        assert kept[pinned.request_id].locked is True
        old = {a.status for a in proposals(db, first["id"])}
        assert old == {AssignmentStatus.CANCELLED}
        replaced = client.get(f"{URL}/{first['id']}", headers=scene.staff()).json()
        assert replaced["stats"]["superseded_by_run_id"] == second["id"]
        assert client.post(f"{URL}/{first['id']}/publish", headers=scene.staff()).status_code == 409

    def test_a_pin_set_while_the_run_computes_sends_it_round_again(
        self,
        client: TestClient,
        db: Session,
        scene: Scene,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        first = drafted(client, db, scene)
        second = trigger(client, scene.staff()).json()
        pinned = proposals(db, first["id"])[0]
        real_compute = runner.compute

        def compute_then_pin(*args: Any) -> runner.Computed:
            computed = real_compute(*args)
            client.post(
                f"/api/v1/assignments/{pinned.id}/lock",
                json={"locked": True},
                headers=scene.staff(),
            )
            return computed

        monkeypatch.setattr(runner, "compute", compute_then_pin)
        assert work(db) == runner.Processed(second["id"], "requeued")
        assert {a.status for a in proposals(db, first["id"])} == {AssignmentStatus.PROPOSED}
        monkeypatch.setattr(runner, "compute", real_compute)
        assert work(db) == runner.Processed(second["id"], "succeeded")
        rerun = client.get(f"{URL}/{second['id']}", headers=scene.staff()).json()
        assert rerun["attempts"] == 2
        assert rerun["stats"]["pinned"] == 1

    def test_an_exclusion_holds_on_the_rerun(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        first = drafted(client, db, scene)
        pair = proposals(db, first["id"])[0]
        r = client.post(
            "/api/v1/exclusions",
            json={
                "provider_id": pair.provider_id,
                "request_id": pair.request_id,
                "reason": "上次合作不顺",
            },
            headers=scene.staff(),
        )
        assert r.status_code == 201, r.text
        diff = client.get(f"{URL}/{first['id']}/diff", headers=scene.staff()).json()
        row = next(row for row in diff["items"] if row["request_id"] == pair.request_id)
        assert row["kind"] == "unmatched"  # the exclusion cancelled that proposal at once
        assert row["proposed_status"] == "cancelled"
        second = drafted(client, db, scene)
        pairs = {(a.request_id, a.provider_id) for a in proposals(db, second["id"])}
        assert (pair.request_id, pair.provider_id) not in pairs


class TestPublish:
    def test_publish_offers_every_proposal_and_builds_the_plans(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        before = event_count(db)
        r = client.post(
            f"{URL}/{run['id']}/publish",
            headers=scene.staff() | {"If-Match": f'W/"{run["version"]}"'},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["run"]["status"] == "published"
        assert body["run"]["published_at"] is not None
        rows = proposals(db, run["id"])
        assert sorted(body["offered"]) == [a.id for a in rows]
        assert {a.status for a in rows} == {AssignmentStatus.OFFERED}
        assert all(a.offer_expires_at is not None for a in rows)
        requests = [db.get(HelpRequest, a.request_id) for a in rows]
        assert {q.status for q in requests if q} == {RequestStatus.MATCHED}
        assert all(q.plan_id is not None for q in requests if q)
        plans = db.scalars(select(Plan).where(Plan.id.in_(body["plan_ids"]))).all()
        assert {p.enterprise_id for p in plans} == {q.enterprise_id for q in requests if q}
        actions = Counter(db.scalars(select(Event.action).order_by(Event.id).offset(before)).all())
        assert actions["assignment.offered"] == 3
        assert actions["match_run.published"] == 1
        mine = client.get("/api/v1/assignments", headers=scene.cast.headers(scene.wide_user))
        assert {a["status"] for a in mine.json()["items"]} == {"offered"}

    def test_each_offer_is_recorded_and_heard_by_its_subscribers_in_the_drafts_order(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        """The offers' events come from the statement that offers (one ``WITH`` on
        PostgreSQL, two statements on SQLite): one per offer, in the draft's order, with its
        enterprise's region, and a webhook delivery each for a subscriber."""
        hook = "https://hooks.example.com/o"
        db.add(WebhookSubscription(url=hook, events=["assignment.*"], secret="s"))
        db.commit()
        run = drafted(client, db, scene)
        r = client.post(f"{URL}/{run['id']}/publish", headers=scene.staff())
        assert r.status_code == 200, r.text
        rows = sorted(proposals(db, run["id"]), key=lambda a: (a.request_id, a.id))
        regions = {
            q.id: db.get_one(Enterprise, q.enterprise_id).region_code for q in scene.requests
        }
        offered = db.execute(
            select(Event.entity_type, Event.entity_id, Event.region_code, Event.after)
            .where(Event.action == "assignment.offered")
            .order_by(Event.id)
        ).all()
        assert [tuple(e) for e in offered] == [
            ("assignments", a.id, regions[a.request_id], {"status": "offered"}) for a in rows
        ]
        deliveries = db.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.event_type == "assignment.offered")
            .order_by(WebhookDelivery.id)
        ).all()
        assert [d.payload["data"]["entity_id"] for d in deliveries] == [a.id for a in rows]

    def test_a_stale_if_match_is_412(self, client: TestClient, db: Session, scene: Scene) -> None:
        run = drafted(client, db, scene)
        r = client.post(
            f"{URL}/{run['id']}/publish",
            headers=scene.staff() | {"If-Match": f'W/"{run["version"] - 1}"'},
        )
        assert r.status_code == 412

    def test_publishing_twice_is_409(self, client: TestClient, db: Session, scene: Scene) -> None:
        run = drafted(client, db, scene)
        assert client.post(f"{URL}/{run['id']}/publish", headers=scene.staff()).status_code == 200
        assert client.post(f"{URL}/{run['id']}/publish", headers=scene.staff()).status_code == 409

    def test_a_capacity_conflict_fails_the_whole_publish(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        rows = proposals(db, run["id"])
        full = Counter(a.provider_id for a in rows).most_common(1)[0][0]
        late = make_request(
            db, scene.cast.ent, category="export", title="新增诉求", status="triaged"
        )
        offer_by_hand(db, late.id, full)
        before = event_count(db)
        r = client.post(f"{URL}/{run['id']}/publish", headers=scene.staff())
        assert r.status_code == 409
        conflicts = r.json()["conflicts"]
        assert {c["provider_id"] for c in conflicts} == {full}
        assert all("capacity" in c["reason"] for c in conflicts)
        db.expire_all()
        assert {a.status for a in proposals(db, run["id"])} == {AssignmentStatus.PROPOSED}
        assert {fetch(db, HelpRequest, a.request_id).status for a in rows} == {
            RequestStatus.TRIAGED
        }
        assert db.scalar(select(func.count()).select_from(Plan)) == 0
        assert event_count(db) == before
        assert fetch(db, MatchRun, run["id"]).status == "succeeded"

    def test_a_request_offered_by_hand_meanwhile_blocks_the_publish(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        taken = proposals(db, run["id"])[0]
        offer_by_hand(db, taken.request_id, scene.cast.platform.id)
        r = client.post(f"{URL}/{run['id']}/publish", headers=scene.staff())
        assert r.status_code == 409
        assert [c["request_id"] for c in r.json()["conflicts"]] == [taken.request_id]

    def test_a_pair_forbidden_since_the_run_blocks_the_publish(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        pair = proposals(db, run["id"])[0]
        conflict_of_interest = proposals(db, run["id"])[1]
        # as a decline elsewhere would leave it (the exclusions API also cancels the proposal)
        db.add(
            Exclusion(
                provider_id=pair.provider_id,
                request_id=pair.request_id,
                reason="回避",
                created_at=utc_now(),
            )
        )
        request = db.get(HelpRequest, conflict_of_interest.request_id)
        assert request is not None
        db.add(
            ProviderConflict(
                provider_id=conflict_of_interest.provider_id,
                enterprise_id=request.enterprise_id,
                created_at=utc_now(),
            )
        )
        db.commit()
        r = client.post(f"{URL}/{run['id']}/publish", headers=scene.staff())
        assert r.status_code == 409
        reasons = {c["request_id"]: c["reason"] for c in r.json()["conflicts"]}
        assert "exclusion" in reasons[pair.request_id]
        assert "conflict of interest" in reasons[conflict_of_interest.request_id]


class TestRevert:
    def test_revert_withdraws_unanswered_offers_and_keeps_accepted_ones(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        client.post(f"{URL}/{run['id']}/publish", headers=scene.staff())
        rows = proposals(db, run["id"])
        accepted = next(a for a in rows if a.provider_id == scene.wide.id)
        r = client.post(
            f"/api/v1/assignments/{accepted.id}/accept",
            headers=scene.cast.headers(scene.wide_user),
        )
        assert r.status_code == 200, r.text
        r = client.post(f"{URL}/{run['id']}/revert", headers=scene.staff())
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["run"]["status"] == "reverted"
        assert [a["id"] for a in body["kept"]] == [accepted.id]
        assert sorted(body["withdrawn"]) == sorted(a.id for a in rows if a.id != accepted.id)
        db.expire_all()
        for a in proposals(db, run["id"]):
            request = db.get(HelpRequest, a.request_id)
            assert request is not None
            if a.id == accepted.id:
                assert a.status == AssignmentStatus.ACCEPTED
                assert request.status == RequestStatus.IN_PROGRESS
            else:
                assert a.status == AssignmentStatus.WITHDRAWN
                assert request.status == RequestStatus.TRIAGED
        actions = set(db.scalars(select(Event.action)))
        assert {"assignment.withdrawn", "match_run.reverted"} <= actions

    def test_only_a_published_run_can_be_reverted(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        assert client.post(f"{URL}/{run['id']}/revert", headers=scene.staff()).status_code == 409


class TestAllOrNothing:
    def test_a_fault_half_way_through_the_proposals_leaves_nothing(
        self,
        client: TestClient,
        db: Session,
        scene: Scene,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        first = drafted(client, db, scene)
        second = trigger(client, scene.staff()).json()
        before = event_count(db)
        real, calls = runner.proposal_row, []

        def flaky(*args: Any) -> dict[str, Any]:
            calls.append(args)
            if len(calls) == 2:
                raise RuntimeError("injected fault")
            return real(*args)

        monkeypatch.setattr(runner, "proposal_row", flaky)
        monkeypatch.setattr(runner, "WRITE_BATCH", 1)  # the first row is already INSERTed
        processed = work(db)
        assert processed == runner.Processed(second["id"], "failed")
        db.expire_all()
        assert proposals(db, second["id"]) == []
        failed = db.get(MatchRun, second["id"])
        assert failed is not None
        assert failed.status == "failed"
        assert "injected fault" in failed.error
        assert event_count(db) == before + 1  # only the failure itself is audited
        last = db.scalars(select(Event).order_by(Event.id.desc()).limit(1)).one()
        assert last.action == "match_run.failed"
        # the earlier draft was not superseded: its supersession rolled back too
        assert {a.status for a in proposals(db, first["id"])} == {AssignmentStatus.PROPOSED}
        assert "superseded_by_run_id" not in fetch(db, MatchRun, first["id"]).stats


class TestRematchKeepsTheRunsWeights:
    """A decline re-matches with the ``min_score`` of the run that made the offer (7.7)."""

    def test_a_decline_offers_no_one_the_run_would_have_refused(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        ask = {"category": "export", "title": "出口订单下滑,需要开拓海外市场", "status": "triaged"}
        request = make_request(db, cast.ent, urgency=4, **ask)
        strong = make_provider(db, capacity=1, skills={"export": 3}, expertise="外贸 出口 海外市场")
        weak = make_provider(db, capacity=1, skills={"export": 1}, expertise="仓储 物流 设备")
        strong_user = make_user(db, Role.EXPERT, provider_id=strong.id)
        db.commit()
        staff = cast.headers(cast.coordinator)

        probe = drafted_run(client, db, staff, {"min_score": 0.0})
        chosen = next(a for a in proposals(db, probe["id"]) if a.request_id == request.id)
        priority = chosen.breakdown["priority"]  # scores carry it; min_score does not
        runner_up = {
            r["provider_id"]: r["score"] / priority for r in chosen.breakdown["runners_up"]
        }
        assert chosen.provider_id == strong.id
        assert runner_up[weak.id] >= 0.2  # the default min_score would let the weak one in

        strict = (runner_up[weak.id] + chosen.score / priority) / 2
        run = drafted_run(client, db, staff, {"min_score": strict})
        published = client.post(f"{URL}/{run['id']}/publish", headers=staff)
        assert published.status_code == 200, published.text
        offer = next(a for a in proposals(db, run["id"]) if a.request_id == request.id)
        declined = client.post(
            f"/api/v1/assignments/{offer.id}/decline",
            json={"reason_code": "no_capacity", "reason": ""},
            headers=cast.headers(strong_user),
        )
        assert declined.status_code == 200, declined.text
        assert rematch_declined(db) == 1  # the worker's re-match, with the run's weights
        db.expire_all()
        after = db.scalars(select(Assignment).where(Assignment.request_id == request.id)).all()
        assert not [a for a in after if a.provider_id == weak.id and a.status == "offered"]


def drafted_run(
    client: TestClient, db: Session, headers: dict[str, str], weights: dict[str, float]
) -> dict[str, Any]:
    r = client.post(URL, json={"scope_region": "35", "weights": weights}, headers=headers)
    assert r.status_code == 202, r.text
    assert work(db) == runner.Processed(r.json()["id"], "succeeded")
    body: dict[str, Any] = r.json()
    return body


class _RefusedStatement(Exception):
    """Stands in for a driver error without SQLSTATE (psycopg's "number of parameters must
    be between 0 and 65535" is one): nothing a retry can fix."""


class TestFailuresNeverBlockTheScope:
    def test_an_error_a_retry_cannot_fix_fails_the_run_at_once(
        self,
        client: TestClient,
        db: Session,
        scene: Scene,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        def refused(*_args: Any) -> list[tuple[int, int]]:
            raise OperationalError("SELECT ...", {}, _RefusedStatement("too many parameters"))

        monkeypatch.setattr(encode, "locked_pairs", refused)
        run = trigger(client, scene.staff()).json()
        assert work(db) == runner.Processed(run["id"], "failed")
        shown = client.get(f"{URL}/{run['id']}", headers=scene.staff()).json()
        assert shown["attempts"] == 1
        assert "too many parameters" in shown["stats"]["error"]
        assert shown["stats"]["failed_stage"] == "snapshot"
        assert trigger(client, scene.staff()).status_code == 202  # the scope is free

    def test_a_busy_database_is_retried(
        self, client: TestClient, db: Session, scene: Scene, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def busy(*_args: Any) -> list[tuple[int, int]]:
            raise OperationalError("SELECT ...", {}, _RefusedStatement("database is locked"))

        monkeypatch.setattr(encode, "locked_pairs", busy)
        run = trigger(client, scene.staff()).json()
        assert work(db) == runner.Processed(run["id"], "requeued")

    def test_a_run_queued_too_long_is_failed_by_the_next_trigger(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        stuck = trigger(client, scene.staff()).json()
        blocked = trigger(client, scene.staff())
        assert blocked.status_code == 409  # a fresh queued run still blocks its scope
        db.execute(
            update(MatchRun)
            .where(MatchRun.id == stuck["id"])
            .values(created_at=utc_now() - QUEUE_PATIENCE - timedelta(minutes=1))
        )
        db.commit()
        fresh = trigger(client, scene.staff())
        assert fresh.status_code == 202, fresh.text
        assert fresh.json()["stats"]["replaced_stuck_run_ids"] == [stuck["id"]]
        old = client.get(f"{URL}/{stuck['id']}", headers=scene.staff()).json()
        assert old["status"] == "failed"
        assert old["error"].startswith("stuck")


class TestAdvice:
    """``GET /match-runs/{id}/advice``: the run's recruitment advice, for staff only."""

    def test_the_unmatched_export_request_asks_for_one_more_slot_in_3505(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        r = client.get(f"{URL}/{run['id']}/advice", headers=scene.staff())
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["total"] == 1
        assert page["next_cursor"] is None
        (cell,) = page["items"]
        assert (cell["rank"], cell["category"], cell["region"]) == (1, "export", "3505")
        assert cell["requests"] == 1
        assert cell["with_candidates"] == 1
        assert cell["slots_needed"] == 1
        assert cell["providers_needed"] == 1
        assert cell["marginal_score"] > 0
        assert cell["exact"]
        assert cell["provider_id"] in (scene.wide.id, scene.narrow.id)
        proposed = {a.request_id for a in proposals(db, run["id"])}
        (left,) = {q.id for q in scene.requests} - proposed
        assert cell["request_ids"] == [left]
        assert "export" not in cell["message_zh"]  # the taxonomy's label, not the key
        assert "would serve 1 more request" in cell["message_en"]

    def test_a_run_without_a_result_has_no_advice_yet(
        self, client: TestClient, scene: Scene
    ) -> None:
        run = trigger(client, scene.staff()).json()
        r = client.get(f"{URL}/{run['id']}/advice", headers=scene.staff())
        assert r.status_code == 409
        assert r.headers["content-type"].startswith("application/problem+json")

    @pytest.mark.parametrize(
        ("role", "status"),
        [("admin", 200), ("other_coordinator", 404), ("enterprise", 403), ("expert", 403)],
    )
    def test_who_may_read_the_advice(
        self, client: TestClient, db: Session, scene: Scene, role: str, status: int
    ) -> None:
        run = drafted(client, db, scene)
        headers = scene.cast.headers(scene.cast.by_role()[role])
        r = client.get(f"{URL}/{run['id']}/advice", headers=headers)
        assert r.status_code == status, r.text
        if status >= 400:
            assert r.headers["content-type"].startswith("application/problem+json")
