"""Plans that guide the work: template milestones with owners and working-day due dates,
ticked off by their owner under If-Match, a generated zh/en summary a coordinator may take
over, and the provider's completion summary kept on the plan and in the exports."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.bundling import attach, milestones
from app.common import clock
from app.common.workdays import add_working_days
from app.models import (
    Assignment,
    AssignmentOrigin,
    AssignmentStatus,
    Event,
    HelpRequest,
    Milestone,
    Severity,
)
from app.settings import get_settings
from app.supervision import batches
from tests.app.conftest import Cast
from tests.factories import (
    fetch,
    make_enterprise,
    make_policy,
    make_request,
    query_plan,
    sessions_of_test,
    statements,
)

API = "/api/v1"
MONDAY = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Beijing, an ordinary working day
FINANCING = ["需求诊断", "对接金融机构", "方案与材料", "授信/放款", "回访"]


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "utc_now", lambda: MONDAY)


def offer(client: TestClient, cast: Cast, request_id: int, provider_id: int) -> dict[str, Any]:
    r = client.post(
        f"{API}/assignments",
        json={"request_id": request_id, "provider_id": provider_id},
        headers=cast.headers(cast.coordinator),
    )
    assert r.status_code == 201, r.text
    offered: dict[str, Any] = r.json()
    return offered


def plan_of(client: TestClient, cast: Cast, request_id: int, db: Session) -> dict[str, Any]:
    request = db.get(HelpRequest, request_id, populate_existing=True)
    assert request is not None
    assert request.plan_id is not None
    r = client.get(f"{API}/plans/{request.plan_id}", headers=cast.headers(cast.coordinator))
    assert r.status_code == 200, r.text
    plan: dict[str, Any] = r.json()
    return plan


@pytest.fixture
def offered(client: TestClient, cast: Cast, db: Session, frozen: None) -> dict[str, Any]:
    """A financing request of ``ent`` offered to ``expert``: its plan, as staff read it."""
    make_policy(db)  # ent is 专精特新: it qualifies
    request = make_request(db, cast.ent, title="原材料涨价、订单却少了，资金回笼慢")
    db.commit()
    offer(client, cast, request.id, cast.expert.id)
    return plan_of(client, cast, request.id, db)


def set_due_date(
    client: TestClient, cast: Cast, plan: dict[str, Any], milestone_id: int, due: str | None
) -> Any:
    """A coordinator's date for a step (None: no date), against the plan version read."""
    return client.patch(
        f"{API}/plans/{plan['id']}/milestones/{milestone_id}",
        json={"due_date": due},
        headers=cast.headers(cast.coordinator) | {"If-Match": f'"{plan["version"]}"'},
    )


def tick(
    client: TestClient,
    cast: Cast,
    plan: dict[str, Any],
    milestone: dict[str, Any],
    who: Any,
    *,
    action: str = "done",
    version: int | None = None,
) -> Any:
    url = f"{API}/plans/{plan['id']}/milestones/{milestone['id']}/{action}"
    etag = f'W/"{milestone["version"] if version is None else version}"'
    return client.post(url, headers=cast.headers(who) | {"If-Match": etag})


class TestTemplates:
    def test_every_category_of_a_fresh_install_has_one(
        self, client: TestClient, cast: Cast
    ) -> None:
        headers = cast.headers(cast.ent_user)
        listed = client.get(f"{API}/categories", params={"limit": 100}, headers=headers).json()
        assert listed["next_cursor"] is None
        categories = {c["key"] for c in listed["items"]}
        seen: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 5}
        while True:
            page = client.get(f"{API}/milestone-templates", params=params, headers=headers).json()
            assert page["total"] == len(categories)
            seen += page["items"]
            if not page["next_cursor"]:
                break
            params["cursor"] = page["next_cursor"]
        assert {t["category_key"] for t in seen} == categories
        assert all(t["steps"] and t["steps"][-1]["owner"] == "coordinator" for t in seen)
        financing = next(t for t in seen if t["category_key"] == "financing")
        assert [s["title_zh"] for s in financing["steps"]] == FINANCING
        assert all(s["title_en"] for s in financing["steps"])

    def test_admin_edits_under_if_match_and_it_is_audited(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        url, headers = f"{API}/milestone-templates/legal_ip", cast.headers(cast.admin)
        read = client.get(url, headers=headers)
        assert read.headers["etag"] == 'W/"1"'
        steps = [{"title_zh": "诊断", "title_en": "Diagnosis", "clock": "first_feedback"}]
        body = {"steps": steps}
        assert client.patch(url, json=body, headers=headers).status_code == 428
        done = client.patch(url, json=body, headers=headers | {"If-Match": 'W/"1"'})
        assert done.status_code == 200, done.text
        assert done.headers["etag"] == 'W/"2"'
        assert (
            done.json()["steps"][0] | {"owner": "provider", "after_days": 0}
            == done.json()["steps"][0]
        )
        stale = client.patch(url, json=body, headers=headers | {"If-Match": 'W/"1"'})
        assert stale.status_code == 412
        event = db.scalars(select(Event).where(Event.action == "milestone_template.updated")).one()
        assert event.after is not None
        assert event.after["steps"][0]["title_zh"] == "诊断"

    @pytest.mark.parametrize(
        "role", ["coordinator", "other_coordinator", "enterprise", "expert", "platform"]
    )
    def test_only_admins_edit(self, client: TestClient, cast: Cast, role: str) -> None:
        r = client.patch(
            f"{API}/milestone-templates/financing",
            json={"steps": []},
            headers=cast.headers(cast.by_role()[role]) | {"If-Match": "*"},
        )
        assert r.status_code == 403
        assert client.get(f"{API}/milestone-templates/financing").status_code == 401

    def test_a_bad_step_is_422_naming_the_field(self, client: TestClient, cast: Cast) -> None:
        r = client.patch(
            f"{API}/milestone-templates/financing",
            json={"steps": [{"title_zh": "x", "title_en": "x", "owner": "boss"}]},
            headers=cast.headers(cast.admin) | {"If-Match": "*"},
        )
        assert r.status_code == 422
        assert "owner" in r.text

    def test_a_new_category_starts_from_the_generic_template(
        self, client: TestClient, cast: Cast
    ) -> None:
        headers = cast.headers(cast.admin)
        created = client.post(
            f"{API}/categories",
            json={"key": "carbon", "name_zh": "双碳", "name_en": "Carbon"},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        template = client.get(f"{API}/milestone-templates/carbon", headers=headers).json()
        assert [s["owner"] for s in template["steps"]] == ["provider", "provider", "coordinator"]


class TestGeneratedMilestones:
    def test_an_offer_gives_the_plan_its_templates_steps_owned_and_due(
        self, offered: dict[str, Any], cast: Cast
    ) -> None:
        steps = offered["milestones"]
        assert [m["title"] for m in steps] == FINANCING
        assert [m["owner_role"] for m in steps] == ["provider"] * 4 + ["coordinator"]
        assert {m["owner_provider_id"] for m in steps[:4]} == {cast.expert.id}
        assert steps[0]["owner"] == cast.expert.name
        start = date(2026, 6, 1)  # Monday; 3 days first feedback, 7 to resolve (ordinary)
        wanted = [3, 5, 7, 17, 22]
        assert [m["due_date"] for m in steps] == [
            add_working_days(start, n).isoformat() for n in wanted
        ]
        # the Dragon Boat Festival (Friday 19 June 2026) is not a working day
        assert steps[3]["due_date"] == "2026-06-25"  # 06-24 counting the holiday

    def test_an_edited_template_reaches_the_next_request_only(
        self, client: TestClient, cast: Cast, db: Session, offered: dict[str, Any]
    ) -> None:
        steps = [{"title_zh": "只一步", "title_en": "One step", "owner": "coordinator"}]
        r = client.patch(
            f"{API}/milestone-templates/financing",
            json={"steps": steps},
            headers=cast.headers(cast.admin) | {"If-Match": "*"},
        )
        assert r.status_code == 200
        second = make_request(db, cast.ent, title="续贷")
        db.commit()
        offer(client, cast, second.id, cast.platform.id)
        plan = plan_of(client, cast, second.id, db)
        assert plan["id"] == offered["id"]
        titles = [m["title"] for m in plan["milestones"] if m["request_id"] == second.id]
        assert titles == ["只一步"]
        assert len(plan["milestones"]) == len(FINANCING) + 1

    def test_open_provider_steps_follow_a_reassignment(
        self, client: TestClient, cast: Cast, db: Session, offered: dict[str, Any]
    ) -> None:
        first = offered["milestones"][0]
        assert tick(client, cast, offered, first, cast.expert_user).status_code == 200
        r = client.post(
            f"{API}/assignments/{offered['assignments'][0]['id']}/reassign",
            json={"provider_id": cast.platform.id, "reason": "换人"},
            headers=cast.headers(cast.coordinator),
        )
        assert r.status_code == 200, r.text
        plan = client.get(
            f"{API}/plans/{offered['id']}", headers=cast.headers(cast.coordinator)
        ).json()
        owners = {m["title"]: m["owner_provider_id"] for m in plan["milestones"]}
        assert owners["需求诊断"] == cast.expert.id  # done under the first provider
        assert owners["对接金融机构"] == owners["授信/放款"] == cast.platform.id
        assert len(plan["milestones"]) == len(FINANCING)  # not generated twice

    @pytest.mark.usefixtures("packaged_calendar_only")  # 2026 known to the package, 2027 not
    def test_beyond_the_calendars_years_the_step_waits_for_a_date_not_a_503(
        self, client: TestClient, cast: Cast, db: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(clock, "utc_now", lambda: datetime(2026, 12, 21, 2, tzinfo=UTC))
        major = make_request(db, cast.ent, severity=Severity.MAJOR)
        db.commit()
        offer(client, cast, major.id, cast.expert.id)
        dues = [m["due_date"] for m in plan_of(client, cast, major.id, db)["milestones"]]
        assert dues[0] is not None
        assert dues[0].startswith("2026-12")
        assert dues[2:] == [None, None, None]  # 30 working days run into 2027
        monkeypatch.setattr(clock, "utc_now", lambda: datetime(2027, 1, 6, 2, tzinfo=UTC))
        later = make_request(db, cast.ent, title="新一年的诉求")
        db.commit()
        offer(client, cast, later.id, cast.platform.id)
        plan = plan_of(client, cast, later.id, db)
        assert {m["due_date"] for m in plan["milestones"] if m["request_id"] == later.id} == {None}


class TestDatedOnceTheCalendarKnows:
    """A step left "to be scheduled" (its day in a year the calendar did not know) is dated
    by the deadline sweep once an operator gives that year's schedule, counted from the day
    its plan got the offer; a date a coordinator set stays theirs."""

    @pytest.mark.usefixtures("packaged_calendar_only")  # 2026 known to the package, 2027 not
    def test_the_sweep_dates_the_waiting_steps(
        self,
        client: TestClient,
        cast: Cast,
        db: Session,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
    ) -> None:
        monkeypatch.setattr(clock, "utc_now", lambda: datetime(2026, 12, 21, 2, tzinfo=UTC))
        major = make_request(db, cast.ent, severity=Severity.MAJOR)
        db.commit()
        offer(client, cast, major.id, cast.expert.id)
        plan = plan_of(client, cast, major.id, db)
        waiting = [m["id"] for m in plan["milestones"] if m["due_date"] is None]
        assert len(waiting) == 3
        by_hand = waiting[0]
        r = set_due_date(client, cast, plan, by_hand, "2027-03-01")
        assert r.status_code == 200, r.text
        assert batches.sweep(sessions_of_test(db)).scheduled_milestones == 0  # 2027 unknown

        holidays = tmp_path / "holidays.toml"
        holidays.write_text(HOLIDAYS_2027, encoding="utf-8")
        monkeypatch.setenv("ZHUQI_HOLIDAY_FILE", str(holidays))
        get_settings.cache_clear()
        report = batches.sweep(sessions_of_test(db), batch=1)
        assert report.scheduled_milestones == 2

        db.expire_all()
        rows = {m.id: m for m in db.scalars(select(Milestone).where(Milestone.id.in_(waiting)))}
        assert rows[by_hand].due_date == date(2027, 3, 1)
        for milestone_id in waiting[1:]:
            step = rows[milestone_id]
            assert step.due_from == date(2026, 12, 21)
            assert step.due_workdays is not None
            # counted by hand from the file: New Year and the Spring Festival week are off
            assert step.due_date == count_working_days(
                date(2026, 12, 21), step.due_workdays, off=OFF_2027
            )
            assert step.due_date.year == 2027
        told = db.scalars(select(Event).where(Event.action == "plan.milestones_scheduled")).all()
        assert {(e.entity_type, e.entity_id) for e in told} == {("plans", plan["id"])}
        dated = {int(i): day for e in told for i, day in (e.after or {})["due_dates"].items()}
        assert dated == {i: rows[i].due_date.isoformat() for i in waiting[1:]}  # type: ignore[union-attr]
        assert batches.sweep(sessions_of_test(db)).scheduled_milestones == 0  # nothing left

    def test_a_coordinator_who_clears_a_date_keeps_it_clear(
        self, client: TestClient, cast: Cast, db: Session, offered: dict[str, Any]
    ) -> None:
        first = offered["milestones"][0]
        r = set_due_date(client, cast, offered, first["id"], None)
        assert r.status_code == 200, r.text
        assert r.json()["due_date"] is None
        assert batches.sweep(sessions_of_test(db)).scheduled_milestones == 0
        db.expire_all()
        assert fetch(db, Milestone, first["id"]).due_date is None

    def test_the_same_date_again_is_no_change(
        self, client: TestClient, cast: Cast, db: Session, offered: dict[str, Any]
    ) -> None:
        first = offered["milestones"][0]
        r = set_due_date(client, cast, offered, first["id"], first["due_date"])
        assert r.status_code == 200, r.text
        db.expire_all()
        step = fetch(db, Milestone, first["id"])
        assert (step.version, step.due_workdays) == (first["version"], 3)  # clock kept
        updated = select(Event).where(Event.action == "plan.milestone_updated")
        assert db.scalars(updated).all() == []

    def test_the_waiting_clocks_are_read_from_their_partial_index(self, db: Session) -> None:
        plan = query_plan(db, milestones.UNDATED_CLOCKS)
        assert "ix_milestones_undated" in plan, plan


HOLIDAYS_2027 = """
[2027]
holidays = ["2027-01-01..2027-01-03", "2027-02-06..2027-02-13"]
workdays = ["2027-02-14"]
"""
OFF_2027 = {date(2027, 1, 1) + timedelta(days=n) for n in range(3)} | {
    date(2027, 2, 6) + timedelta(days=n) for n in range(8)
}
ON_2027 = {date(2027, 2, 14)}  # an adjusted Sunday (调休)


def count_working_days(start: date, days: int, *, off: set[date]) -> date:
    """The ``days``-th working day after ``start``: Monday to Friday, less ``off``, plus the
    adjusted weekend days; 2026's days from the packaged calendar."""
    day = start
    while days:
        day += timedelta(days=1)
        if day.year == 2026:
            working = bool(chinese_calendar.is_workday(day))
        else:
            working = (day.weekday() < 5 and day not in off) or day in ON_2027
        days -= working
    return day


class TestTicking:
    def test_the_owner_ticks_and_reopens_under_if_match(
        self, client: TestClient, cast: Cast, db: Session, offered: dict[str, Any]
    ) -> None:
        step = offered["milestones"][0]
        url = f"{API}/plans/{offered['id']}/milestones/{step['id']}/done"
        assert client.post(url, headers=cast.headers(cast.expert_user)).status_code == 428
        done = tick(client, cast, offered, step, cast.expert_user)
        assert done.status_code == 200, done.text
        assert done.json()["done"] is True
        assert done.json()["done_at"] is not None
        assert done.headers["etag"] == 'W/"2"'
        assert tick(client, cast, offered, step, cast.expert_user).status_code == 412
        again = tick(client, cast, offered, step, cast.expert_user, action="reopen", version=2)
        assert again.status_code == 200
        assert again.json()["done"] is False
        assert again.json()["done_at"] is None
        actions = set(db.scalars(select(Event.action).where(Event.entity_type == "milestones")))
        assert {"plan.milestone_done", "plan.milestone_reopened"} <= actions

    @pytest.mark.parametrize(
        ("role", "step", "status"),
        [
            ("admin", 0, 200),
            ("coordinator", 0, 200),
            ("coordinator", 4, 200),
            ("other_coordinator", 0, 404),
            ("enterprise", 0, 403),
            ("other_enterprise", 0, 404),
            ("expert", 0, 200),
            ("expert", 4, 403),  # the coordinator's step
            ("platform", 0, 404),  # not working on this plan
        ],
    )
    def test_who_may_tick(
        self,
        client: TestClient,
        cast: Cast,
        offered: dict[str, Any],
        role: str,
        step: int,
        status: int,
    ) -> None:
        milestone = offered["milestones"][step]
        r = tick(client, cast, offered, milestone, cast.by_role()[role])
        assert r.status_code == status, r.text

    def test_a_provider_serving_another_request_of_the_plan_cannot_tick_these(
        self, client: TestClient, cast: Cast, db: Session, offered: dict[str, Any]
    ) -> None:
        other = make_request(db, cast.ent, title="第二个诉求")
        db.commit()
        offer(client, cast, other.id, cast.platform.id)
        plan = plan_of(client, cast, other.id, db)
        theirs = next(
            m for m in plan["milestones"] if m["request_id"] == offered["requests"][0]["id"]
        )
        assert tick(client, cast, plan, theirs, cast.platform_user).status_code == 403

    def test_ticking_moves_the_summarys_next_step(
        self, client: TestClient, cast: Cast, offered: dict[str, Any]
    ) -> None:
        assert "下一步：需求诊断" in offered["summary"]
        tick(client, cast, offered, offered["milestones"][0], cast.expert_user)
        plan = client.get(f"{API}/plans/{offered['id']}", headers=cast.headers(cast.ent_user))
        assert "下一步：对接金融机构" in plan.json()["summary"]
        assert "Next: Introductions to banks and guarantors" in plan.json()["summary_en"]


class TestSummary:
    def test_generated_in_both_languages(self, offered: dict[str, Any], cast: Cast) -> None:
        zh, en = offered["summary"], offered["summary_en"]
        assert "融资「原材料涨价、订单却少了，资金回笼慢」" in zh
        assert f"帮扶方：{cast.expert.name}（融资）" in zh
        assert "《专精特新中小企业贷款贴息》" in zh
        assert "2026-06-04前" in zh
        assert en.startswith("1 request(s): Financing")
        assert f"Helping: {cast.expert.name} (Financing)" in en
        assert "due 2026-06-04" in en
        assert offered["summary_edited"] is False

    def test_a_coordinators_words_stay_until_handed_back(
        self, client: TestClient, cast: Cast, db: Session, offered: dict[str, Any]
    ) -> None:
        url, headers = f"{API}/plans/{offered['id']}", cast.headers(cast.coordinator)
        etag = {"If-Match": f'W/"{offered["version"]}"'}
        edited = client.patch(url, json={"summary": "先办续贷，再谈扩产。"}, headers=headers | etag)
        assert edited.status_code == 200, edited.text
        assert edited.json()["summary_edited"] is True
        second = make_request(db, cast.ent, title="续贷")
        db.commit()
        offer(client, cast, second.id, cast.platform.id)
        kept = client.get(url, headers=headers)
        assert kept.json()["summary"] == "先办续贷，再谈扩产。"
        back = client.patch(
            url,
            json={"summary_edited": False},
            headers=headers | {"If-Match": kept.headers["etag"]},
        )
        assert back.status_code == 200
        assert back.json()["summary"].startswith("诉求2项")
        assert back.headers["etag"] == f'W/"{back.json()["version"]}"'

    @pytest.mark.parametrize(
        ("role", "status"),
        [("enterprise", 403), ("expert", 403), ("other_coordinator", 404), ("admin", 200)],
    )
    def test_only_staff_of_the_region_edit_it(
        self, client: TestClient, cast: Cast, offered: dict[str, Any], role: str, status: int
    ) -> None:
        r = client.patch(
            f"{API}/plans/{offered['id']}",
            json={"summary_en": "Bridge loan first."},
            headers=cast.headers(cast.by_role()[role]) | {"If-Match": "*"},
        )
        assert r.status_code == status, r.text


class TestWhoReadsWhat:
    def test_enterprise_reads_its_plan_provider_the_steps_it_owns(
        self, client: TestClient, cast: Cast, db: Session, offered: dict[str, Any]
    ) -> None:
        other = make_request(db, cast.ent, title="招工难")
        db.commit()
        offer(client, cast, other.id, cast.platform.id)
        url = f"{API}/plans/{offered['id']}"
        mine = client.get(url, headers=cast.headers(cast.ent_user)).json()
        assert len(mine["milestones"]) == 2 * len(FINANCING)
        expert = client.get(url, headers=cast.headers(cast.expert_user)).json()
        assert {m["request_id"] for m in expert["milestones"]} == {offered["requests"][0]["id"]}
        assert "summary" not in expert
        for role in ("other_enterprise", "other_coordinator"):
            assert client.get(url, headers=cast.headers(cast.by_role()[role])).status_code == 404


class TestCompletionSummary:
    def test_kept_on_the_assignment_shown_on_the_plan_and_exported(
        self, client: TestClient, cast: Cast, offered: dict[str, Any]
    ) -> None:
        assignment = offered["assignments"][0]["id"]
        expert = cast.headers(cast.expert_user)
        assert (
            client.post(f"{API}/assignments/{assignment}/accept", headers=expert).status_code == 200
        )
        said = "已对接两家银行，获批授信300万元"
        done = client.post(
            f"{API}/assignments/{assignment}/complete", json={"summary": said}, headers=expert
        )
        assert done.status_code == 200, done.text
        assert done.json()["completion_summary"] == said
        plan = client.get(f"{API}/plans/{offered['id']}", headers=cast.headers(cast.ent_user))
        assert plan.json()["assignments"][0]["completion_summary"] == said
        exported = client.get(f"{API}/exports/assignments", headers=cast.headers(cast.coordinator))
        rows = list(csv.reader(io.StringIO(exported.content[3:].decode("utf-8"))))
        column = rows[0].index("完成情况")
        assert [r[column] for r in rows[1:]] == [said]
        plans = client.get(f"{API}/exports/plans", headers=cast.headers(cast.coordinator))
        head, *body = list(csv.reader(io.StringIO(plans.content[3:].decode("utf-8"))))
        assert body[0][head.index("下一里程碑")] == "需求诊断"


class TestSetBased:
    """Publishing thousands of plans stays a handful of statements: the milestones and
    summaries of every plan are written in batches, never a round trip per plan."""

    def _statements(self, db: Session, cast: Cast, n: int) -> tuple[int, dict[int, int]]:
        ids = []
        for k in range(n):
            enterprise = make_enterprise(db, name=f"批量测试企业{n}-{k}")
            request = make_request(db, enterprise, category="export" if k % 2 else "financing")
            db.add(
                Assignment(
                    request_id=request.id,
                    provider_id=cast.expert.id,
                    origin=AssignmentOrigin.MANUAL,
                    status=AssignmentStatus.OFFERED,
                )
            )
            ids.append(enterprise.id)
        db.flush()
        with statements(db) as seen:
            plans = attach.attach_many(db, enterprise_ids=ids, actor=None)
        added = dict(
            db.execute(
                select(Milestone.plan_id, func.count())
                .where(Milestone.plan_id.in_(plans.values()))
                .group_by(Milestone.plan_id)
            ).all()
        )
        return len(seen), added

    def test_statements_do_not_grow_with_the_number_of_plans(
        self, db: Session, cast: Cast, frozen: None
    ) -> None:
        self._statements(
            db, cast, 1
        )  # the first also reads the webhook subscriptions (once a session)
        few, added_few = self._statements(db, cast, 2)
        many, added_many = self._statements(db, cast, 40)
        assert few == many
        assert sorted(set(added_few.values()) | set(added_many.values())) == [4, 5]
        assert len(added_many) == 40
