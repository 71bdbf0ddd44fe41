"""The console over HTTP (no browser): log-in, CSRF, role homes, scoping, form errors, language.

These run on both databases through the suite's rolled-back ``app`` fixture.
"""

from __future__ import annotations

import json
import re
import secrets
from base64 import b64encode
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.common.codes import make_uscc
from app.console import SESSION_COOKIE
from app.console.admin_pages import split_terms
from app.models import (
    Assignment,
    AssignmentOrigin,
    AssignmentStatus,
    Category,
    Event,
    FollowUp,
    GlossaryEntry,
    HelpRequest,
    MatchRun,
    Plan,
    PlanStatus,
    Provider,
    User,
    Vetting,
)
from tests.app.conftest import Cast
from tests.conftest import TEST_SECRET
from tests.console.conftest import csrf_of, log_in, sign_in
from tests.factories import PASSWORD, fetch, make_provider, make_request

TAG = re.compile(r"<[^>]+>")


def visible_text(html: str) -> str:
    """What a person reads: tags (and their attribute values) removed."""
    html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    return TAG.sub(" ", html)


def _requests(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(HelpRequest)) or 0)


class TestLogIn:
    def test_wrong_password_shows_a_message_not_a_trace(self, web: TestClient, cast: Cast) -> None:
        token = csrf_of(web.get("/login").text)
        response = web.post(
            "/login",
            data={"username": cast.ent_user.email, "password": "nope-nope", "csrf_token": token},
        )
        assert response.status_code == 200
        assert "邮箱或密码错误" in response.text
        assert "Traceback" not in response.text
        assert web.get("/enterprise").status_code == 303  # still anonymous

    def test_log_in_without_the_csrf_token_is_refused(self, web: TestClient, cast: Cast) -> None:
        web.get("/login")
        response = web.post("/login", data={"username": cast.ent_user.email, "password": PASSWORD})
        assert response.status_code == 403
        assert "text/html" in response.headers["content-type"]

    @pytest.mark.parametrize(
        ("who", "home"),
        [
            ("enterprise", "/enterprise"),
            ("expert", "/provider"),
            ("platform", "/provider"),
            ("coordinator", "/coordinator"),
            ("admin", "/coordinator"),
        ],
    )
    def test_each_role_lands_on_its_home(
        self, web: TestClient, cast: Cast, who: str, home: str
    ) -> None:
        token = csrf_of(web.get("/login").text)
        response = web.post(
            "/login",
            data={"username": cast.by_role()[who].email, "password": PASSWORD, "csrf_token": token},
        )
        assert response.headers["location"] == home
        assert web.get(home).status_code == 200

    def test_the_session_cookie_is_secure_httponly_samesite(
        self, web: TestClient, cast: Cast
    ) -> None:
        cookie = web.get("/login").headers["set-cookie"].lower()
        assert "secure" in cookie
        assert "httponly" in cookie
        assert "samesite=lax" in cookie

    def test_log_out_ends_the_session(self, web: TestClient, cast: Cast) -> None:
        token = log_in(web, cast.ent_user.email, PASSWORD)
        assert web.post("/logout", data={"csrf_token": token}).status_code == 303
        assert web.get("/enterprise").headers["location"].startswith("/login")

    def test_a_password_change_ends_console_sessions(self, web: TestClient, cast: Cast) -> None:
        log_in(web, cast.ent_user.email, PASSWORD)
        assert web.get("/enterprise").status_code == 200
        assert web.get("/api/v1/requests").status_code == 200  # the cookie reads the API too
        token = web.post(
            "/api/v1/auth/token", data={"username": cast.ent_user.email, "password": PASSWORD}
        ).json()["access_token"]
        changed = web.post(
            "/api/v1/users/me/password",
            json={"current_password": PASSWORD, "new_password": "another-password-2"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert changed.status_code == 204, changed.text
        assert web.get("/enterprise").headers["location"].startswith("/login")
        assert web.get("/api/v1/requests").status_code == 401

    def test_a_cookie_without_its_token_version_is_not_a_session(
        self, web: TestClient, cast: Cast
    ) -> None:
        """Cookies signed before sessions carried the version are logged out, not trusted."""
        token = secrets.token_urlsafe(16)
        payload = b64encode(json.dumps({"uid": cast.ent_user.id, "csrf": token}).encode())
        web.cookies.set(SESSION_COOKIE, TimestampSigner(TEST_SECRET).sign(payload).decode())
        assert web.get("/enterprise").headers["location"].startswith("/login")

    def test_next_never_leaves_the_site(self, web: TestClient, cast: Cast) -> None:
        token = csrf_of(web.get("/login").text)
        response = web.post(
            "/login",
            data={
                "username": cast.ent_user.email,
                "password": PASSWORD,
                "csrf_token": token,
                "next": "//evil.example/x",
            },
        )
        assert response.headers["location"] == "/enterprise"


class TestScoping:
    def test_anonymous_is_sent_to_log_in(self, web: TestClient) -> None:
        response = web.get("/coordinator/runs")
        assert response.headers["location"] == "/login?next=%2Fcoordinator%2Fruns"

    def test_an_enterprise_may_not_open_coordinator_pages(
        self, web: TestClient, cast: Cast
    ) -> None:
        sign_in(web, cast.ent_user)
        response = web.get("/coordinator")
        assert response.status_code == 403
        assert "无权" in response.text

    def test_the_triage_queue_shows_only_my_regions(
        self, web: TestClient, cast: Cast, db: Session
    ) -> None:
        mine = make_request(db, cast.ent, title="晋江的诉求", status="submitted")
        theirs = make_request(db, cast.other_ent, title="郑州的诉求", status="submitted")
        db.commit()
        sign_in(web, cast.coordinator)
        page = web.get("/coordinator").text
        assert mine.title in page
        assert theirs.title not in page

    def test_another_regions_run_is_not_found(
        self, web: TestClient, cast: Cast, db: Session
    ) -> None:
        run = MatchRun(scope_region="41", created_by_id=cast.other_coordinator.id)
        db.add(run)
        db.commit()
        sign_in(web, cast.coordinator)
        assert web.get(f"/coordinator/runs/{run.id}").status_code == 404

    def test_triage_in_another_region_changes_nothing(
        self, web: TestClient, cast: Cast, db: Session
    ) -> None:
        theirs = make_request(db, cast.other_ent, title="郑州的诉求", status="submitted")
        db.commit()
        token = sign_in(web, cast.coordinator)
        response = web.post(
            f"/coordinator/requests/{theirs.id}/triage",
            data={"csrf_token": token, "category": "financing", "urgency": "5"},
        )
        assert response.status_code == 404
        db.expire_all()
        assert fetch(db, HelpRequest, theirs.id).status == "submitted"


class TestForms:
    def test_bad_input_is_shown_at_the_field_and_nothing_is_stored(
        self, web: TestClient, client: TestClient, cast: Cast, db: Session
    ) -> None:
        body = {"title": "x", "category": "financing", "urgency": "3"}
        api = client.post("/api/v1/requests", json=body, headers=cast.headers(cast.ent_user))
        api_message = api.json()["errors"][0]["message"]
        token = sign_in(web, cast.ent_user)
        response = web.post("/enterprise/requests/new", data={**body, "csrf_token": token})
        error = re.search(r'id="title-error"[^>]*>([^<]*)<', response.text)
        assert error
        assert api_message in error.group(1)
        assert 'value="x"' in response.text  # what they typed is kept
        assert _requests(db) == 0

    def test_a_form_without_the_csrf_token_stores_nothing(
        self, web: TestClient, cast: Cast, db: Session
    ) -> None:
        sign_in(web, cast.ent_user)
        body = {"title": "原材料涨价", "category": "cost_reduction", "urgency": "3"}
        assert web.post("/enterprise/requests/new", data=body).status_code == 403
        assert _requests(db) == 0

    def test_filing_a_request_uses_the_api_rules(
        self, web: TestClient, cast: Cast, db: Session
    ) -> None:
        token = sign_in(web, cast.ent_user)
        body = {
            "title": "原材料涨价",
            "category": "cost_reduction",
            "urgency": "4",
            "wanted_by": "2020-01-01",  # in the past: the API refuses it, so does the form
            "csrf_token": token,
        }
        refused = web.post("/enterprise/requests/new", data=body)
        assert 'id="wanted_by-error"' in refused.text
        assert _requests(db) == 0
        body["wanted_by"] = ""
        assert web.post("/enterprise/requests/new", data=body).status_code == 303
        assert _requests(db) == 1

    def test_a_team_request_is_filed_with_its_size(
        self, web: TestClient, cast: Cast, db: Session
    ) -> None:
        token = sign_in(web, cast.ent_user)
        assert 'name="providers_wanted"' in web.get("/enterprise/requests/new").text
        body = {
            "title": "三方会诊",
            "category": "cost_reduction",
            "urgency": "3",
            "providers_wanted": "9",  # beyond the API's 1-5: shown at the field
            "csrf_token": token,
        }
        refused = web.post("/enterprise/requests/new", data=body)
        assert 'id="providers_wanted-error"' in refused.text
        assert _requests(db) == 0
        body["providers_wanted"] = "3"
        assert web.post("/enterprise/requests/new", data=body).status_code == 303
        stored = db.scalars(select(HelpRequest).where(HelpRequest.title == "三方会诊")).one()
        assert stored.providers_wanted == 3

    def test_uscc_is_checked_as_they_type(self, web: TestClient) -> None:
        good = make_uscc("350582", 77)
        assert "✓" in web.get("/register/uscc", params={"uscc": good}).text
        bad = good[:-1] + ("0" if good[-1] != "0" else "1")
        assert "error" in web.get("/register/uscc", params={"uscc": bad}).text


class TestLanguage:
    def test_chinese_by_default_and_no_category_keys(
        self, web: TestClient, cast: Cast, db: Session
    ) -> None:
        make_request(db, cast.ent, category="cost_reduction", title="原材料涨价")
        db.commit()
        sign_in(web, cast.ent_user)
        text = visible_text(web.get("/enterprise").text)
        assert "我的诉求" in text
        assert "降本" in text
        assert "cost_reduction" not in text

    def test_accept_language_english(self, web: TestClient, cast: Cast, db: Session) -> None:
        make_request(db, cast.ent, category="cost_reduction", title="原材料涨价")
        db.commit()
        sign_in(web, cast.ent_user)
        text = visible_text(web.get("/enterprise", headers={"Accept-Language": "en-US"}).text)
        assert "My requests" in text
        assert "Cost reduction" in text
        assert "cost_reduction" not in text

    def test_the_switch_sticks(self, web: TestClient) -> None:
        web.get("/lang/en?next=/login")
        assert "Log in" in web.get("/login", headers={"Accept-Language": "zh-CN"}).text


def test_no_user_is_left_half_registered(web: TestClient, cast: Cast, db: Session) -> None:
    """A registration refused by the service (duplicate USCC) stores neither company nor user."""
    token = csrf_of(web.get("/register").text)
    users = db.scalar(select(func.count()).select_from(User))
    response = web.post(
        "/register",
        data={
            "csrf_token": token,
            "name": "重复公司",
            "uscc": cast.ent.uscc,
            "region_code": "350582",
            "industry_code": "C17",
            "size": "small",
            "tier": "none",
            "full_name": "张三",
            "email": "dup@example.cn",
            "password": "long-enough-1",
        },
    )
    assert 'id="uscc-error"' in response.text
    assert db.scalar(select(func.count()).select_from(User)) == users


class TestAdministration:
    def test_only_admins_open_it(self, web: TestClient, cast: Cast) -> None:
        sign_in(web, cast.coordinator)
        assert web.get("/admin").status_code == 403

    def test_a_coordinator_is_created_with_regions(
        self, web: TestClient, cast: Cast, db: Session
    ) -> None:
        token = sign_in(web, cast.admin)
        body = {
            "csrf_token": token,
            "full_name": "新协调员",
            "email": "new.coordinator@example.cn",
            "password": "long-enough-1",
            "role": "coordinator",
            "region_prefixes": "99",  # not a province: refused at the field
        }
        refused = web.post("/admin/staff", data=body)
        assert 'id="staff.region_prefixes-error"' in refused.text
        assert db.scalar(select(User).where(User.email == body["email"])) is None
        body["region_prefixes"] = "35 4101"
        assert web.post("/admin/staff", data=body).status_code == 303
        created = db.scalar(select(User).where(User.email == body["email"]))
        assert created is not None
        assert created.region_prefixes == ["35", "4101"]

    def test_a_category_clock_is_tuned(self, web: TestClient, cast: Cast, db: Session) -> None:
        token = sign_in(web, cast.admin)
        response = web.post(
            "/admin/categories/financing",
            data={
                "csrf_token": token,
                "name_zh": "融资",
                "name_en": "Financing",
                "route_days": "2",
            },
        )
        assert response.status_code == 303
        db.expire_all()
        assert fetch(db, Category, "financing").route_days == 2


class TestGlossaryPage:
    """The glossary's additions, edited on the admin page through the API's schema and
    service: the same refusals, the same audit trail, a stale copy refused."""

    def test_an_entry_is_added_edited_and_withdrawn(
        self, web: TestClient, cast: Cast, db: Session
    ) -> None:
        token = sign_in(web, cast.admin)
        assert "尚无补充" in web.get("/admin").text  # "No additions yet"
        body = {"csrf_token": token, "concept": "bank_loan", "zh": "过桥贷，转贷", "en": ""}
        assert web.post("/admin/glossary", data=body).status_code == 303
        entry = db.scalar(select(GlossaryEntry).where(GlossaryEntry.concept == "bank_loan"))
        assert entry is not None
        assert (entry.zh, entry.en) == (["过桥贷", "转贷"], [])
        page = web.get("/admin").text
        assert "过桥贷、转贷" in page
        assert "补充内置概念" in page  # "adds to a shipped concept"

        edit = {"csrf_token": token, "version": "1", "zh": "过桥贷", "en": "bridge loan"}
        assert web.post(f"/admin/glossary/{entry.id}", data=edit).status_code == 303
        db.expire_all()
        saved = fetch(db, GlossaryEntry, entry.id)
        assert (saved.zh, saved.en, saved.version) == (["过桥贷"], ["bridge loan"], 2)
        emptied = web.post(f"/admin/glossary/{entry.id}", data=edit | {"version": "2", "zh": ""})
        assert f'id="entry{entry.id}.en-error"' not in emptied.text  # English terms remain
        assert emptied.status_code == 303
        db.expire_all()
        assert fetch(db, GlossaryEntry, entry.id).zh == []
        edit = edit | {"version": "3"}
        refused = web.post(f"/admin/glossary/{entry.id}", data=edit | {"zh": "", "en": ""})
        assert f'id="entry{entry.id}.zh-error"' in refused.text
        assert web.post(f"/admin/glossary/{entry.id}", data=edit).status_code == 303
        edit = edit | {"version": "4"}  # back to 过桥贷 / bridge loan
        stale = web.post(f"/admin/glossary/{entry.id}", data=edit | {"version": "3", "zh": "转贷"})
        assert f'id="entry{entry.id}.If-Match-error"' in stale.text
        db.expire_all()
        assert fetch(db, GlossaryEntry, entry.id).zh == ["过桥贷"]

        gone = {"csrf_token": token, "version": "4"}
        assert web.post(f"/admin/glossary/{entry.id}/delete", data=gone).status_code == 303
        assert db.scalar(select(GlossaryEntry)) is None
        actions = db.scalars(
            select(Event.action).where(Event.action.like("glossary.%")).order_by(Event.id)
        )
        assert list(actions) == ["glossary.created"] + ["glossary.updated"] * 3 + [
            "glossary.deleted"
        ]

    @pytest.mark.parametrize(
        ("concept", "zh", "field"),
        [("Late Payment", "压款", "glossary.concept"), ("late_payment", "", "glossary.")],
    )
    def test_a_refused_entry_is_shown_at_its_field_and_nothing_is_stored(
        self, web: TestClient, cast: Cast, db: Session, concept: str, zh: str, field: str
    ) -> None:
        token = sign_in(web, cast.admin)
        body = {"csrf_token": token, "concept": concept, "zh": zh, "en": ""}
        refused = web.post("/admin/glossary", data=body)
        assert refused.status_code == 200
        assert f'id="{field}-error"' in refused.text
        assert db.scalar(select(func.count()).select_from(GlossaryEntry)) == 0

    def test_only_admins_post_it(self, web: TestClient, cast: Cast, db: Session) -> None:
        token = sign_in(web, cast.coordinator)
        body = {"csrf_token": token, "concept": "late_payment", "zh": "压款", "en": ""}
        assert web.post("/admin/glossary", data=body).status_code == 403
        assert db.scalar(select(func.count()).select_from(GlossaryEntry)) == 0


def test_glossary_terms_split_on_commas_and_lines_not_spaces() -> None:
    typed = "late payment, 压款、押款；拖款\n money held back ,"
    assert split_terms(typed) == ["late payment", "压款", "押款", "拖款", "money held back"]


def test_the_dashboard_draws_svg_charts_with_names(
    web: TestClient, cast: Cast, db: Session
) -> None:
    make_request(db, cast.ent, category="cost_reduction")
    db.commit()
    sign_in(web, cast.coordinator)
    html = web.get("/coordinator/dashboard").text
    assert html.count("<svg") >= 3
    chart = html[html.index('id="chart-matched_category"') :]
    assert "降本" in chart.split("</section>")[0]
    assert "cost_reduction" not in visible_text(html)


class TestApiThroughTheConsoleSession:
    """Download buttons are plain links: the API reads the console session, for GETs only."""

    def test_a_read_is_scoped_like_a_token(self, web: TestClient, cast: Cast, db: Session) -> None:
        make_request(db, cast.ent, title="晋江的诉求")
        make_request(db, cast.other_ent, title="郑州的诉求")
        db.commit()
        sign_in(web, cast.ent_user)
        titles = [r["title"] for r in web.get("/api/v1/requests").json()["items"]]
        assert titles == ["晋江的诉求"]

    def test_a_write_still_needs_a_token(self, web: TestClient, cast: Cast, db: Session) -> None:
        sign_in(web, cast.ent_user)
        body = {"title": "原材料涨价", "category": "cost_reduction", "urgency": 3}
        assert web.post("/api/v1/requests", json=body).status_code == 401
        assert _requests(db) == 0

    def test_export_buttons_download_through_the_console_session(
        self, web: TestClient, cast: Cast
    ) -> None:
        sign_in(web, cast.coordinator)
        page = web.get("/coordinator/providers").text
        assert "/api/v1/exports/providers?format=csv" in page
        assert "/api/v1/exports/providers?format=xlsx" in page
        download = web.get("/api/v1/exports/providers?format=csv")
        assert download.status_code == 200
        assert download.content.startswith(b"\xef\xbb\xbf")
        assert cast.expert.name in download.content.decode("utf-8-sig")


def _offer(db: Session, cast: Cast) -> Assignment:
    plan = Plan(enterprise_id=cast.ent.id, status=PlanStatus.ACTIVE)
    db.add(plan)
    db.flush()
    request = make_request(db, cast.ent, status="matched", plan_id=plan.id)
    assignment = Assignment(
        request_id=request.id,
        provider_id=cast.expert.id,
        origin=AssignmentOrigin.MANUAL,
        status=AssignmentStatus.OFFERED,
    )
    db.add(assignment)
    db.commit()
    return assignment


class TestProvider:
    def test_completing_an_unaccepted_offer_keeps_no_summary_note(
        self, web: TestClient, cast: Cast, db: Session
    ) -> None:
        """The summary note and the completion are one change: refused, neither is stored."""
        assignment = _offer(db, cast)
        token = sign_in(web, cast.expert_user)
        response = web.post(
            f"/provider/assignments/{assignment.id}/complete",
            data={"csrf_token": token, "summary": "已完成"},
        )
        assert "offered" in response.text  # the API's refusal, shown on the card
        assert db.scalar(select(func.count()).select_from(FollowUp)) == 0
        db.expire_all()
        assert fetch(db, Assignment, assignment.id).status == AssignmentStatus.OFFERED

    def test_decline_needs_a_reason_code(self, web: TestClient, cast: Cast, db: Session) -> None:
        assignment = _offer(db, cast)
        token = sign_in(web, cast.expert_user)
        url = f"/provider/assignments/{assignment.id}/decline"
        refused = web.post(url, data={"csrf_token": token, "reason": "忙"})
        assert f'id="{assignment.id}.reason_code-error"' in refused.text
        done = web.post(url, data={"csrf_token": token, "reason_code": "no_capacity"})
        assert done.status_code == 303
        db.expire_all()
        assert fetch(db, Assignment, assignment.id).status == AssignmentStatus.DECLINED

    def test_another_providers_offer_is_not_found(
        self, web: TestClient, cast: Cast, db: Session
    ) -> None:
        assignment = _offer(db, cast)
        token = sign_in(web, cast.platform_user)
        response = web.post(
            f"/provider/assignments/{assignment.id}/accept", data={"csrf_token": token}
        )
        assert response.status_code == 404


def test_a_coordinator_vets_a_self_registered_provider(
    web: TestClient, cast: Cast, db: Session
) -> None:
    pending = make_provider(db, name="待审专家", vetting=Vetting.PENDING)
    db.commit()
    token = sign_in(web, cast.coordinator)
    listed = web.get("/coordinator/providers", params={"vetting": "pending"}).text
    assert "待审专家" in listed
    assert "待审核" in visible_text(listed)
    url = f"/coordinator/providers/{pending.id}/vetting"
    refused = web.post(url, data={"csrf_token": token, "decision": "approve"})
    assert f'id="{pending.id}.reason-error"' in refused.text  # a reason is required
    done = web.post(url, data={"csrf_token": token, "decision": "approve", "reason": "资质齐全"})
    assert done.status_code == 303
    db.expire_all()
    assert fetch(db, Provider, pending.id).vetting == Vetting.APPROVED


def test_the_supervision_board_shows_first_rows_and_totals(
    web: TestClient, cast: Cast, db: Session
) -> None:
    request = make_request(db, cast.ent, status="triaged")
    request.created_at = utc_now() - timedelta(days=20)  # past the 1- and 7-day clocks
    db.commit()
    sign_in(web, cast.coordinator)
    response = web.get("/coordinator/supervision")
    assert response.status_code == 200
    assert f"#{request.id}" in response.text
    assert "(2)" in visible_text(response.text)  # unrouted and unresolved: a total of two
