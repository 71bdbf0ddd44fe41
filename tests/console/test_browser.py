"""The closed loop, clicked through in a real browser on a live server, on both databases.

The enterprise registers and files a request; the coordinator triages it, runs a match for
the region, watches the run finish and publishes it; the expert accepts, logs a follow-up and
completes the work; the enterprise rates it. Every step is asserted on the page and in the
database. Any console error or request to another host fails the test (see ``Tabs``).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.common.codes import make_uscc
from app.models import (
    Assignment,
    AssignmentStatus,
    Feedback,
    FollowUp,
    HelpRequest,
    RequestStatus,
    Role,
)
from tests.console.conftest import Live, Tabs
from tests.factories import PASSWORD, make_provider, make_user

TITLE = "出口订单回款慢,流动资金紧张"


def _cast(live: Live) -> dict[str, Any]:
    with Session(live.engine) as session, session.begin():
        expert = make_provider(
            session, name="林晓梅", skills={"financing": 3}, regions=["35"], capacity=3
        )
        coordinator = make_user(session, Role.COORDINATOR, region_prefixes=["35"])
        expert_user = make_user(session, Role.EXPERT, provider_id=expert.id)
        return {
            "expert": expert.name,
            "coordinator": coordinator.email,
            "expert_user": expert_user.email,
        }


def _log_in(tab: Any, email: str) -> None:
    tab.goto("/login")
    tab.fill("#username", email)
    tab.fill("#password", PASSWORD)
    tab.click("form[action='/login'] button[type=submit]")


def _one(live: Live, statement: Any) -> Any:
    with Session(live.engine) as session:
        return session.scalar(statement)


def _register(tab: Any, email: str) -> None:
    tab.goto("/register")
    tab.fill("#name", "晋江市浏览器测试鞋业有限公司")
    tab.locator("#uscc").press_sequentially(make_uscc("350582", 424242))
    tab.wait_for_selector("#uscc-check .ok")  # checked as they type, by the server
    tab.fill("#region_code", "350582")
    tab.fill("#industry_code", "C17")
    tab.select_option("#size", "small")
    tab.fill("#full_name", "王经理")
    tab.fill("#email", email)
    tab.fill("#password", "browser-pass-1")
    tab.click("form[action='/register'] button[type=submit]")
    tab.wait_for_url("**/enterprise")


def _file_request(tab: Any, live: Live) -> int:
    tab.goto("/enterprise/requests/new")
    tab.fill("#title", "x")  # too short: refused next to the field, nothing stored
    tab.select_option("#category", "financing")
    tab.click("form[action='/enterprise/requests/new'] button[type=submit]")
    assert "title" in tab.inner_text("#title-error")
    assert _one(live, select(func.count()).select_from(HelpRequest)) == 0
    tab.fill("#title", TITLE)
    tab.fill("#description", "海外客户账期九十天,需要应收账款融资方案")
    tab.select_option("#urgency", "4")
    tab.fill("#wanted_by", (date.today() + timedelta(days=30)).isoformat())
    tab.click("form[action='/enterprise/requests/new'] button[type=submit]")
    tab.wait_for_url("**/enterprise")
    row = tab.locator("#requests tr", has_text=TITLE)
    assert "已提交" in row.inner_text()
    assert "融资" in row.inner_text()
    assert "financing" not in row.inner_text()
    request = _one(live, select(HelpRequest).where(HelpRequest.title == TITLE))
    assert request.status == RequestStatus.SUBMITTED
    assert request.urgency == 4
    return int(request.id)


def _coordinate(tab: Any, live: Live, email: str, request_id: int) -> int:
    _log_in(tab, email)
    tab.wait_for_url("**/coordinator")
    card = tab.locator(f"#request-{request_id}")
    assert TITLE in card.inner_text()
    card.locator("button[type=submit]").click()
    tab.wait_for_url("**/coordinator")
    assert _one(live, select(HelpRequest.status).where(HelpRequest.id == request_id)) == (
        RequestStatus.TRIAGED
    )
    tab.goto("/coordinator/runs")
    tab.fill("#scope_region", "35")
    tab.click("form[action='/coordinator/runs'] button[type=submit]")
    # The page polls the run (htmx) and reloads itself when the worker has finished it.
    tab.wait_for_selector("form[action$='/publish'] button", timeout=45_000)
    assert tab.inner_text("#matched") == "1"
    assert TITLE in tab.inner_text("#diff")
    tab.click("form[action$='/publish'] button")
    tab.wait_for_selector("form[action$='/revert'] button")
    assert "已发布" in tab.inner_text("#run-status")
    offered = select(Assignment).where(Assignment.request_id == request_id)
    assignment = _one(live, offered)
    assert assignment.status == AssignmentStatus.OFFERED
    return int(assignment.id)


def _serve(tab: Any, live: Live, email: str, assignment_id: int) -> None:
    _log_in(tab, email)
    tab.wait_for_url("**/provider")
    offer = tab.locator(f"#assignment-{assignment_id}")
    assert TITLE in offer.inner_text()
    assert "匹配理由" in offer.inner_text()
    offer.locator("form[action$='/accept'] button").click()
    tab.wait_for_url("**/provider")
    status = select(Assignment.status).where(Assignment.id == assignment_id)
    assert _one(live, status) == AssignmentStatus.ACCEPTED
    work = tab.locator(f"#assignment-{assignment_id}")
    work.locator("select[name=kind]").select_option("visit")
    work.locator("input[name=progress]").fill("50")
    work.locator("textarea[name=notes]").fill("上门了解账期情况,对接两家银行")
    work.locator("form[action$='/follow-up'] button").click()
    tab.wait_for_url("**/provider")
    assert _one(live, select(func.count()).select_from(FollowUp)) == 1
    assert _one(live, status) == AssignmentStatus.ACTIVE
    work = tab.locator(f"#assignment-{assignment_id}")
    work.locator("summary", has_text="完成").click()
    work.locator("textarea[name=summary]").fill("已落实应收账款质押融资")
    work.locator("form[action$='/complete'] button").click()
    tab.wait_for_url("**/provider")
    assert _one(live, status) == AssignmentStatus.COMPLETED


def _rate(tab: Any, live: Live, assignment_id: int, expert: str) -> None:
    tab.goto("/enterprise/plan")
    block = tab.locator(f"#assignment-{assignment_id}")
    assert expert in block.inner_text()
    assert "匹配理由" in block.inner_text()
    block.locator("input[name=satisfied][value=yes]").check()
    block.locator("select[name=rating]").select_option("5")
    block.locator("textarea[name=comment]").fill("专家很专业,问题解决了")
    block.locator("button[type=submit]").click()
    tab.wait_for_url("**/enterprise/plan")
    assert "已评价" in tab.inner_text(f"#assignment-{assignment_id}")
    feedback = _one(live, select(Feedback).where(Feedback.assignment_id == assignment_id))
    assert feedback.satisfied
    assert feedback.rating == 5


def test_the_closed_loop_in_the_browser(tabs: Tabs, live: Live) -> None:
    cast = _cast(live)
    enterprise = tabs.open()
    _register(enterprise, "boss@browser.test")
    request_id = _file_request(enterprise, live)
    assignment_id = _coordinate(tabs.open(), live, cast["coordinator"], request_id)
    _serve(tabs.open(width=390, height=844), live, cast["expert_user"], assignment_id)
    _rate(enterprise, live, assignment_id, cast["expert"])
    status = select(HelpRequest.status).where(HelpRequest.id == request_id)
    assert _one(live, status) == RequestStatus.RESOLVED
