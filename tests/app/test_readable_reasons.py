"""Reasons people can read: labels instead of category keys, and the structured unmatched
reason of the latest run and the latest re-match on the run and on the request itself."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Enterprise, EnterpriseSize, Policy, Tier
from app.policies.eligibility import eligibility_reason
from tests.app.test_match_runs_api import URL, Scene, drafted, proposals, scene, work
from tests.factories import make_provider, make_request, rematch_declined

__all__ = ["scene"]  # the fixture, re-used from the match-run tests


def _unmatched_id(run: dict[str, object]) -> int:
    stats = run["stats"]
    assert isinstance(stats, dict)
    (only,) = stats["unmatched_requests"]
    return int(only["request_id"])


class TestRunStatistics:
    def test_the_run_shows_the_structured_reason(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        (reason,) = run["stats"]["unmatched_requests"]
        assert reason["reason"] == "capacity_taken"
        assert reason["taken_by"]  # the requests that took the three export slots
        assert set(reason["taken_by"]) <= {r.id for r in scene.requests}
        assert set(reason["removed"]) >= {"category", "region", "capacity"}
        assert reason["message_zh"]
        assert reason["message_en"]

    def test_the_diff_pages_carry_it_too(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        diff = client.get(
            f"{URL}/{run['id']}/diff", params={"kind": "unmatched"}, headers=scene.staff()
        ).json()
        (row,) = diff["items"]
        assert row["unmatched"]["reason"] == "capacity_taken"
        assert row["unmatched"]["request_id"] == row["request_id"]

    def test_reasons_name_categories_by_their_labels(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        make_request(db, scene.cast.ent, category="legal_ip", title="商标被人抢注了怎么办")
        db.commit()
        run = drafted(client, db, scene)
        by_reason = {u["reason"]: u for u in run["stats"]["unmatched_requests"]}
        nobody = by_reason["category"]
        assert "法律与知识产权" in nobody["message_zh"]
        assert "Legal and intellectual property" in nobody["message_en"]
        assert "legal_ip" not in nobody["message_zh"] + nobody["message_en"]
        for shortage in run["stats"]["shortages"]:
            assert shortage["category"] not in shortage["message_zh"] + shortage["message_en"]
        for proposal in proposals(db, run["id"]):
            assert "外贸" in proposal.breakdown["reason_zh"]
            assert "export" not in proposal.breakdown["reason_zh"]
            assert "Export and foreign trade" in proposal.breakdown["reason_en"]


class TestRequestPage:
    def test_staff_see_the_latest_runs_reason(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        request_id = _unmatched_id(run)
        got = client.get(f"/api/v1/requests/{request_id}", headers=scene.staff()).json()
        (reason,) = got["unmatched"]
        assert reason["source"] == "run"
        assert reason["match_run_id"] == run["id"]
        assert reason["reason"] == "capacity_taken"
        assert reason["taken_by"]

    def test_the_enterprise_sees_why_but_not_whose_requests_won(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        request_id = _unmatched_id(run)
        owner = next(r for r in scene.requests if r.id == request_id)
        assert owner.enterprise_id == scene.cast.ent.id  # its least urgent request loses
        headers = scene.cast.headers(scene.cast.ent_user)
        got = client.get(f"/api/v1/requests/{request_id}", headers=headers)
        (reason,) = got.json()["unmatched"]
        assert reason["reason"] == "capacity_taken"
        assert reason["taken_by"] == []
        assert not any(str(r.id) in reason["message_en"] for r in scene.requests)

    def test_a_later_run_that_matches_it_clears_the_reason(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        request_id = _unmatched_id(drafted(client, db, scene))
        make_provider(db, capacity=3, skills={"export": 3}, expertise="外贸 出口")
        db.commit()
        again = drafted(client, db, scene)
        assert again["stats"]["unmatched_requests"] == []
        got = client.get(f"/api/v1/requests/{request_id}", headers=scene.staff()).json()
        assert got["unmatched"] == []

    def test_a_failed_rematch_leaves_its_reason_on_the_request(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        published = client.post(f"{URL}/{run['id']}/publish", headers=scene.staff())
        assert published.status_code == 200, published.text
        offer = next(a for a in proposals(db, run["id"]) if a.provider_id == scene.wide.id)
        declined = client.post(
            f"/api/v1/assignments/{offer.id}/decline",
            json={"reason_code": "no_capacity", "reason": ""},
            headers=scene.cast.headers(scene.wide_user),
        )
        assert declined.status_code == 200, declined.text
        assert work(db) is None  # the re-match is the worker's queue, not a run
        assert rematch_declined(db) == 1
        got = client.get(f"/api/v1/requests/{offer.request_id}", headers=scene.staff()).json()
        by_source = {u["source"]: u for u in got["unmatched"]}
        assert "rematch" in by_source
        assert by_source["rematch"]["match_run_id"] is None
        assert by_source["rematch"]["reason"] in {"excluded", "capacity", "conflict"}
        assert by_source["rematch"]["message_zh"]


class TestPolicyReasons:
    def test_a_policy_reason_names_categories_tier_and_size_in_words(self) -> None:
        policy = Policy(
            id=1,
            title="专精特新贷款贴息",
            tiers=["specialised"],
            sizes=["small"],
            industry_prefixes=[],
            region_prefixes=[],
            categories=["financing", "export"],
        )
        enterprise = Enterprise(
            tier=Tier.SPECIALISED,
            size=EnterpriseSize.SMALL,
            industry_code="C17",
            region_code="350582",
        )
        labels = {"financing": ("融资", "Financing"), "export": ("外贸", "Export")}
        found = eligibility_reason(
            policy, enterprise, {"financing", "export"}, date.today(), labels
        )
        assert found is not None
        assert "对应诉求：外贸、融资" in found["reason_zh"]
        assert "addresses Export, Financing" in found["reason_en"]
        assert "small enterprise" in found["reason_en"]
        assert "specialised and sophisticated SME" in found["reason_en"]
        assert "financing" not in found["reason_zh"] + found["reason_en"]


class TestSecondaryCategories:
    def test_a_run_matches_on_a_secondary_category_and_says_so(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        request = make_request(
            db,
            scene.cast.ent,
            category="legal_ip",
            extra_categories=["export"],
            title="海外客户拖欠货款，合同纠纷要打官司",
        )
        make_provider(db, capacity=5, skills={"export": 3}, expertise="外贸 出口 海外收款")
        db.commit()
        run = drafted(client, db, scene)
        (mine,) = [a for a in proposals(db, run["id"]) if a.request_id == request.id]
        assert "外贸" in mine.breakdown["reason_zh"]
        assert "（次要类别）" in mine.breakdown["reason_zh"]
        assert "(secondary category)" in mine.breakdown["reason_en"]
        assert mine.breakdown["features"]["skill"] < 1.0  # level 3, at the secondary share
