"""The console's side of plans that guide the work: the admin edits a category's milestone
template, the provider ticks its steps off from the inbox, the enterprise reads the summary,
the steps and what was done."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import HelpRequest, Milestone, MilestoneTemplate, Plan, PlanStatus
from tests.app.conftest import Cast
from tests.console.conftest import sign_in
from tests.factories import fetch, make_request

API = "/api/v1"


def _accepted(client: TestClient, cast: Cast, db: Session) -> dict[str, Any]:
    request = make_request(db, cast.ent, title="资金回笼慢，想申请续贷")
    db.commit()
    made = client.post(
        f"{API}/assignments",
        json={"request_id": request.id, "provider_id": cast.expert.id},
        headers=cast.headers(cast.coordinator),
    )
    assert made.status_code == 201, made.text
    accepted = client.post(
        f"{API}/assignments/{made.json()['id']}/accept", headers=cast.headers(cast.expert_user)
    )
    assert accepted.status_code == 200, accepted.text
    body: dict[str, Any] = accepted.json()
    return body


def _template(db: Session, key: str) -> MilestoneTemplate:
    db.expire_all()
    return db.scalars(select(MilestoneTemplate).where(MilestoneTemplate.category_key == key)).one()


class TestAdminTemplate:
    def test_lines_become_steps_and_bad_ones_are_refused_at_the_field(
        self, web: TestClient, cast: Cast, db: Session
    ) -> None:
        token = sign_in(web, cast.admin)
        page = web.get("/admin").text
        assert "需求诊断 | Needs diagnosis | provider | first_feedback | 0" in page
        url = "/admin/categories/export/milestones"
        bad = web.post(url, data={"csrf_token": token, "steps": "诊断 | Diagnosis | boss"})
        assert 'id="export.steps-error"' in bad.text
        assert _template(db, "export").version == 1
        lines = "诊断 | Diagnosis | provider | first_feedback\n\n回访 | Visit | coordinator | resolve | 5"
        saved = web.post(url, data={"csrf_token": token, "steps": lines})
        assert saved.status_code == 303
        template = _template(db, "export")
        assert [s["title_zh"] for s in template.steps] == ["诊断", "回访"]
        assert template.steps[1]["after_days"] == 5

    def test_only_admins_post_it(self, web: TestClient, cast: Cast, db: Session) -> None:
        token = sign_in(web, cast.coordinator)
        r = web.post("/admin/categories/export/milestones", data={"csrf_token": token, "steps": ""})
        assert r.status_code == 403
        assert _template(db, "export").version == 1


class TestProviderTicks:
    def test_the_inbox_lists_my_steps_and_ticks_them_under_their_version(
        self, web: TestClient, client: TestClient, cast: Cast, db: Session
    ) -> None:
        assignment = _accepted(client, cast, db)
        token = sign_in(web, cast.expert_user)
        inbox = web.get("/provider").text
        first = db.scalars(
            select(Milestone)
            .where(Milestone.request_id == assignment["request_id"])
            .order_by(Milestone.position)
        ).first()
        assert first is not None
        assert f'id="milestone-{first.id}"' in inbox
        url = f"/provider/milestones/{first.id}/done"
        done = web.post(url, data={"csrf_token": token, "version": str(first.version)})
        assert done.status_code == 303
        db.expire_all()
        assert fetch(db, Milestone, first.id).done is True
        stale = web.post(url.replace("done", "reopen"), data={"csrf_token": token, "version": "1"})
        assert f'id="milestone{first.id}-error"' in stale.text
        db.expire_all()
        assert fetch(db, Milestone, first.id).done is True


class TestEnterprisePlan:
    def test_summary_steps_and_what_was_done_are_shown(
        self, web: TestClient, client: TestClient, cast: Cast, db: Session
    ) -> None:
        assignment = _accepted(client, cast, db)
        said = "已帮助企业获得银行续贷500万元"
        done = client.post(
            f"{API}/assignments/{assignment['id']}/complete",
            json={"summary": said},
            headers=cast.headers(cast.expert_user),
        )
        assert done.status_code == 200, done.text
        sign_in(web, cast.ent_user)
        page = web.get("/enterprise/plan").text
        assert 'id="plan-summary"' in page
        assert "资金回笼慢，想申请续贷" in page.split('id="plan-summary"')[1].split("</div>")[0]
        assert said in page
        assert "对接金融机构" in page


class TestCoordinatorPlans:
    def test_plans_of_my_regions_are_listed_and_others_are_not_found(
        self, web: TestClient, client: TestClient, cast: Cast, db: Session
    ) -> None:
        assignment = _accepted(client, cast, db)
        plan_id = fetch(db, HelpRequest, assignment["request_id"]).plan_id
        sign_in(web, cast.coordinator)
        listed = web.get("/coordinator/plans").text
        assert f'id="plan-{plan_id}"' in listed
        assert cast.ent.name in listed
        page = web.get(f"/coordinator/plans/{plan_id}")
        assert page.status_code == 200
        assert "资金回笼慢，想申请续贷" in page.text
        assert "Mark done" in page.text or "标记完成" in page.text
        sign_in(web, cast.other_coordinator)
        assert f'id="plan-{plan_id}"' not in web.get("/coordinator/plans").text
        assert web.get(f"/coordinator/plans/{plan_id}").status_code == 404
        sign_in(web, cast.ent_user)
        assert web.get("/coordinator/plans").status_code == 403

    def test_summary_milestones_and_closing_go_through_the_plan_rules(
        self, web: TestClient, client: TestClient, cast: Cast, db: Session
    ) -> None:
        assignment = _accepted(client, cast, db)
        plan_id = fetch(db, HelpRequest, assignment["request_id"]).plan_id
        token = sign_in(web, cast.coordinator)
        url = f"/coordinator/plans/{plan_id}"

        words = {"csrf_token": token, "summary": "先续贷，再降本", "summary_en": ""}
        assert web.post(f"{url}/summary", data=words).status_code == 303
        db.expire_all()
        plan = fetch(db, Plan, plan_id)
        assert (plan.summary, plan.summary_edited) == ("先续贷，再降本", True)
        back = {"csrf_token": token, "summary": "", "summary_en": ""}
        assert web.post(f"{url}/summary", data=back).status_code == 303
        db.expire_all()
        assert fetch(db, Plan, plan_id).summary_edited is False

        step = db.scalars(
            select(Milestone).where(Milestone.plan_id == plan_id).order_by(Milestone.position)
        ).first()
        assert step is not None
        tick = {"csrf_token": token, "version": str(step.version)}
        assert web.post(f"{url}/milestones/{step.id}/done", data=tick).status_code == 303
        db.expire_all()
        assert fetch(db, Milestone, step.id).done is True
        stale = web.post(f"{url}/milestones/{step.id}/reopen", data=tick)
        assert f'id="milestone{step.id}-error"' in stale.text
        # A form that lost its version is a stale copy to reload, as on the other forms: not
        # the API's "send If-Match" (428), which means nothing to a person at a page.
        lost = web.post(f"{url}/milestones/{step.id}/reopen", data={"csrf_token": token})
        assert f'id="milestone{step.id}-error"' in lost.text
        assert "reload" in lost.text
        assert "If-Match" not in lost.text
        db.expire_all()
        assert fetch(db, Milestone, step.id).done is True

        refused = web.post(f"{url}/close", data={"csrf_token": token})
        assert refused.status_code == 200
        assert str(assignment["request_id"]) in refused.text.split('id="plan-close-form"')[1]
        db.expire_all()
        assert fetch(db, Plan, plan_id).status != PlanStatus.CLOSED

    def test_the_enterprise_page_has_no_staff_controls(
        self, web: TestClient, client: TestClient, cast: Cast, db: Session
    ) -> None:
        _accepted(client, cast, db)
        sign_in(web, cast.ent_user)
        page = web.get("/enterprise/plan").text
        assert "/coordinator/plans/" not in page


class TestPlanBeingPrepared:
    """After a large publish the worker fills a plan in moments later; both pages say so
    instead of showing an empty plan without a word."""

    def test_both_pages_say_the_plan_is_being_prepared_until_it_is(
        self, web: TestClient, client: TestClient, cast: Cast, db: Session
    ) -> None:
        assignment = _accepted(client, cast, db)
        plan_id = fetch(db, HelpRequest, assignment["request_id"]).plan_id
        pages = {
            cast.coordinator: f"/coordinator/plans/{plan_id}",
            cast.ent_user: "/enterprise/plan",
        }
        for user, url in pages.items():
            sign_in(web, user)
            assert 'id="plan-preparing"' not in web.get(url).text
        marked = update(Plan).where(Plan.id == plan_id).values(preparation_run_id=1)
        db.execute(marked)  # as a publish that defers preparation leaves it
        db.commit()
        for user, url in pages.items():
            sign_in(web, user)
            page = web.get(url)
            assert page.status_code == 200
            assert 'id="plan-preparing"' in page.text
