"""Issue 8 items 2–4: staff-owned fields, vetting of providers and tiers, triage as a gate."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.codes import make_uscc
from app.match_runs import runner
from app.models import Assignment, Enterprise, Event, Notification, Provider, Tier, Vetting
from tests.app.conftest import Cast
from tests.factories import PASSWORD, make_request, sessions_of_test

API = "/api/v1"


def register_provider(client: TestClient, **profile: Any) -> dict[str, Any]:
    body = {
        "email": "new.expert@example.cn",
        "password": PASSWORD,
        "full_name": "新专家",
        "provider": {
            "kind": "expert",
            "name": "新专家",
            "skills": {"export": 3},
            "expertise": "外贸 出口 export",
            "home_region_code": "350582",
            "capacity": 2,
        }
        | profile,
    }
    r = client.post(f"{API}/auth/register/provider", json=body)
    assert r.status_code == 201, r.text
    registered: dict[str, Any] = r.json()
    return registered


def provider_of(db: Session, user: dict[str, Any]) -> Provider:
    provider = db.get(Provider, user["provider_id"], populate_existing=True)
    assert provider is not None
    return provider


def patch(client: TestClient, url: str, headers: dict[str, str], **body: Any) -> Any:
    version = client.get(url, headers=headers).headers.get("ETag", "")
    return client.patch(url, json=body, headers=headers | {"If-Match": version})


def run_region(client: TestClient, db: Session, cast: Cast) -> dict[str, Any]:
    r = client.post(f"{API}/match-runs", json={"scope_region": "35"}, headers=staff(cast))
    assert r.status_code == 202, r.text
    processed = runner.process_next(sessions_of_test(db), "test-worker")
    assert processed is not None
    assert processed.outcome == "succeeded", processed
    run: dict[str, Any] = client.get(
        f"{API}/match-runs/{r.json()['id']}", headers=staff(cast)
    ).json()
    return run


def staff(cast: Cast) -> dict[str, str]:
    return cast.headers(cast.coordinator)


def proposed_providers(db: Session, run_id: int) -> set[int]:
    rows = db.scalars(select(Assignment.provider_id).where(Assignment.match_run_id == run_id))
    return set(rows)


class TestTriageGate:
    def test_only_triaged_requests_enter_a_run_and_the_rest_are_counted(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        ask = {"category": "financing", "title": "纺织企业流动资金贷款"}
        triaged = make_request(db, cast.ent, status="triaged", **ask)
        for _ in range(2):
            make_request(db, cast.ent, status="submitted", **ask)
        db.commit()
        run = run_region(client, db, cast)
        decided = db.scalars(
            select(Assignment.request_id).where(Assignment.match_run_id == run["id"])
        )
        assert set(decided) == {triaged.id}
        assert run["stats"]["requests"] == 1
        assert run["stats"]["left_out"] == {"untriaged": 2}


class TestEnterpriseOwnedFields:
    def url(self, cast: Cast) -> str:
        return f"{API}/enterprises/{cast.ent.id}"

    def test_an_enterprise_cannot_move_itself_to_another_region(
        self, client: TestClient, cast: Cast
    ) -> None:
        r = patch(client, self.url(cast), cast.headers(cast.ent_user), region_code="410105")
        assert r.status_code == 403, r.text
        assert r.json()["field"] == "region_code"

    def test_a_coordinator_cannot_move_it_outside_their_regions(
        self, client: TestClient, cast: Cast
    ) -> None:
        r = patch(client, self.url(cast), staff(cast), region_code="410105")
        assert r.status_code == 403
        assert patch(client, self.url(cast), staff(cast), region_code="350583").status_code == 200

    def test_an_enterprise_tier_change_is_a_claim_until_verified(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        r = patch(client, self.url(cast), cast.headers(cast.ent_user), tier="champion")
        assert r.status_code == 200, r.text
        assert (r.json()["tier"], r.json()["claimed_tier"]) == ("specialised", "champion")
        verify = f"{self.url(cast)}/tier-verification"
        decision = {"decision": "approve", "reason": "工信部公示名单第五批"}
        other = cast.headers(cast.other_coordinator)
        assert client.post(verify, json=decision, headers=other).status_code == 404
        assert (
            client.post(verify, json=decision, headers=cast.headers(cast.ent_user)).status_code
            == 403
        )
        r = client.post(verify, json=decision, headers=staff(cast))
        assert r.status_code == 200, r.text
        assert (r.json()["tier"], r.json()["claimed_tier"]) == ("champion", None)
        assert client.post(verify, json=decision, headers=staff(cast)).status_code == 409
        event = db.scalars(select(Event).where(Event.action == "enterprise.tier_verified")).one()
        assert event.after is not None
        assert event.after["tier"] == "champion"
        note = db.scalars(
            select(Notification).where(Notification.recipient_user_id == cast.ent_user.id)
        ).one()
        assert note.kind == "enterprise.tier_verified"

    def test_a_rejected_claim_leaves_the_verified_tier(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        patch(client, self.url(cast), cast.headers(cast.ent_user), tier="champion")
        r = client.post(
            f"{self.url(cast)}/tier-verification",
            json={"decision": "reject", "reason": "不在名单"},
            headers=staff(cast),
        )
        assert r.status_code == 200
        assert (r.json()["tier"], r.json()["claimed_tier"]) == ("specialised", None)
        assert r.json()["tier_reason"] == "不在名单"

    def test_a_self_registered_tier_is_only_claimed(self, client: TestClient, db: Session) -> None:
        body = {
            "email": "boss@example.cn",
            "password": PASSWORD,
            "full_name": "老板",
            "enterprise": {
                "name": "晋江市自报纺织有限公司",
                "uscc": make_uscc("350582", 987654),
                "region_code": "350582",
                "industry_code": "C17",
                "size": "small",
                "tier": "little_giant",
            },
        }
        r = client.post(f"{API}/auth/register/enterprise", json=body)
        assert r.status_code == 201, r.text
        enterprise = db.get(Enterprise, r.json()["enterprise_id"])
        assert enterprise is not None
        assert (enterprise.tier, enterprise.claimed_tier) == (Tier.NONE, Tier.LITTLE_GIANT)


class TestProviderOwnedFields:
    def url(self, cast: Cast) -> str:
        return f"{API}/providers/{cast.expert.id}"

    @pytest.mark.parametrize(
        ("body", "field"),
        [({"home_region_code": "410105"}, "home_region_code"), ({"capacity": 50}, "capacity")],
    )
    def test_a_provider_cannot_set_staff_owned_fields(
        self, client: TestClient, cast: Cast, body: dict[str, Any], field: str
    ) -> None:
        r = patch(client, self.url(cast), cast.headers(cast.expert_user), **body)
        assert r.status_code == 403, r.text
        assert r.json()["field"] == field

    def test_staff_grant_capacity_above_the_ceiling(self, client: TestClient, cast: Cast) -> None:
        assert patch(client, self.url(cast), staff(cast), capacity=50).status_code == 200

    @pytest.mark.parametrize("home", ["410105", None])
    def test_a_coordinator_cannot_rehome_outside_their_regions(
        self, client: TestClient, cast: Cast, home: str | None
    ) -> None:
        r = patch(client, self.url(cast), staff(cast), home_region_code=home)
        assert r.status_code == 403, r.text
        assert r.json()["field"] == "home_region_code"

    def test_an_admin_may_rehome_anywhere(self, client: TestClient, cast: Cast) -> None:
        r = patch(client, self.url(cast), cast.headers(cast.admin), home_region_code=None)
        assert r.status_code == 200, r.text

    def test_self_registration_within_the_ceiling_only(self, client: TestClient) -> None:
        body = {
            "email": "big@example.cn",
            "password": PASSWORD,
            "full_name": "大平台",
            "provider": {
                "kind": "expert",
                "name": "x",
                "skills": {"export": 1},
                "capacity": 10_000,
            },
        }
        r = client.post(f"{API}/auth/register/provider", json=body)
        assert r.status_code == 403
        assert r.json()["field"] == "capacity"


class TestVetting:
    def test_a_self_registered_provider_is_pending_and_never_matched(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        user = register_provider(client)
        provider = provider_of(db, user)
        assert provider.vetting == Vetting.PENDING
        request = make_request(db, cast.ent, category="export", status="triaged", title="出口")
        db.commit()
        run = run_region(client, db, cast)
        assert provider.id not in proposed_providers(db, run["id"])
        r = client.post(
            f"{API}/assignments",
            json={"request_id": request.id, "provider_id": provider.id},
            headers=staff(cast),
        )
        assert r.status_code == 409, r.text
        assert r.json()["field"] == "provider_id"

    def test_approval_by_the_home_regions_coordinator_makes_it_matchable(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        user = register_provider(client)
        url = f"{API}/providers/{user['provider_id']}/vetting"
        decision = {"decision": "approve", "reason": "资质核验通过"}
        assert (
            client.post(
                url, json=decision, headers=cast.headers(cast.other_coordinator)
            ).status_code
            == 403
        )
        assert (
            client.post(url, json={"decision": "approve"}, headers=staff(cast)).status_code == 422
        )
        r = client.post(url, json=decision, headers=staff(cast))
        assert r.status_code == 200, r.text
        assert (r.json()["vetting"], r.json()["vetting_reason"]) == ("approved", "资质核验通过")
        assert client.post(url, json=decision, headers=staff(cast)).status_code == 409
        event = db.scalars(select(Event).where(Event.action == "provider.approved")).one()
        assert event.before is not None
        assert event.after is not None
        assert (event.before["vetting"], event.after["vetting"]) == ("pending", "approved")
        assert event.actor_id == cast.coordinator.id
        note = db.scalars(
            select(Notification).where(Notification.kind == "provider.approved")
        ).one()
        assert note.recipient_user_id == user["id"]
        make_request(db, cast.ent, category="export", status="triaged", title="出口")
        db.commit()
        run = run_region(client, db, cast)
        assert user["provider_id"] in proposed_providers(db, run["id"])

    def test_a_rejected_provider_stays_out(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        user = register_provider(client)
        r = client.post(
            f"{API}/providers/{user['provider_id']}/vetting",
            json={"decision": "reject", "reason": "资料不全"},
            headers=cast.headers(cast.admin),
        )
        assert r.status_code == 200
        assert provider_of(db, user).vetting == Vetting.REJECTED
        assert len(db.scalars(select(Event).where(Event.action == "provider.rejected")).all()) == 1

    def test_staff_created_providers_are_approved(self, client: TestClient, cast: Cast) -> None:
        body = {
            "kind": "expert",
            "name": "陈律师",
            "skills": {"legal_ip": 3},
            "home_region_code": "350502",
        }
        r = client.post(f"{API}/providers", json=body, headers=staff(cast))
        assert r.status_code == 201, r.text
        assert r.json()["vetting"] == "approved"

    def test_pending_providers_are_listed_for_staff(self, client: TestClient, cast: Cast) -> None:
        user = register_provider(client)
        r = client.get(f"{API}/providers", params={"vetting": "pending"}, headers=staff(cast))
        assert [p["id"] for p in r.json()["items"]] == [user["provider_id"]]
