"""``GET /exports/{kind}``: what each role gets is exactly its own scope, in CSV and XLSX.

The world: R1 (Jinjiang enterprise, in "35") and R2 (Zhengzhou enterprise, in "41"), each in
its enterprise's plan. A1 offers R1 to the expert, A2 offers R2 to the platform, A3 is a draft
(proposed) pairing of R1 with the platform, which only staff may see.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.models import Assignment, AssignmentOrigin, AssignmentStatus, Plan, PlanStatus
from tests.app.conftest import Cast
from tests.factories import make_request

URL = "/api/v1/exports"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ROLES = (
    "admin",
    "coordinator",
    "other_coordinator",
    "enterprise",
    "other_enterprise",
    "expert",
    "platform",
)


@dataclass
class World:
    cast: Cast
    ids: dict[str, int]


@pytest.fixture
def world(db: Session, cast: Cast) -> World:
    p1 = Plan(enterprise_id=cast.ent.id, status=PlanStatus.ACTIVE, summary="融资对接方案")
    p2 = Plan(enterprise_id=cast.other_ent.id, status=PlanStatus.ACTIVE, summary="Zhengzhou")
    db.add_all([p1, p2])
    db.flush()
    r1 = make_request(db, cast.ent, status="matched", plan_id=p1.id, title="=HYPERLINK(1)")
    r2 = make_request(
        db, cast.other_ent, status="matched", plan_id=p2.id, category="cost_reduction"
    )

    def pair(request_id: int, provider_id: int, status: AssignmentStatus) -> Assignment:
        a = Assignment(
            request_id=request_id,
            provider_id=provider_id,
            origin=AssignmentOrigin.MANUAL,
            status=status,
        )
        db.add(a)
        return a

    a1 = pair(r1.id, cast.expert.id, AssignmentStatus.OFFERED)
    a2 = pair(r2.id, cast.platform.id, AssignmentStatus.OFFERED)
    a3 = pair(r1.id, cast.platform.id, AssignmentStatus.PROPOSED)
    db.flush()
    db.commit()
    ids = {"r1": r1.id, "r2": r2.id, "a1": a1.id, "a2": a2.id, "a3": a3.id, "p1": p1.id}
    ids |= {"p2": p2.id, "expert": cast.expert.id, "platform": cast.platform.id}
    return World(cast=cast, ids=ids)


# Who sees what, by the role rules of the lists (names refer to World.ids).
EXPECTED: dict[str, dict[str, set[str]]] = {
    "requests": {
        "admin": {"r1", "r2"},
        "coordinator": {"r1"},
        "other_coordinator": {"r2"},
        "enterprise": {"r1"},
        "other_enterprise": {"r2"},
        "expert": {"r1"},
        "platform": {"r2"},
    },
    "assignments": {
        "admin": {"a1", "a2", "a3"},
        "coordinator": {"a1", "a3"},
        "other_coordinator": {"a2"},
        "enterprise": {"a1"},
        "other_enterprise": {"a2"},
        "expert": {"a1"},
        "platform": {"a2"},
    },
    "plans": {
        "admin": {"p1", "p2"},
        "coordinator": {"p1"},
        "other_coordinator": {"p2"},
        "enterprise": {"p1"},
        "other_enterprise": {"p2"},
        "expert": {"p1"},
        "platform": {"p2"},
    },
    "providers": {
        "admin": {"expert", "platform"},
        "coordinator": {"expert", "platform"},
        "other_coordinator": {"expert", "platform"},
        "enterprise": {"expert"},
        "other_enterprise": {"platform"},
        "expert": {"expert"},
        "platform": {"platform"},
    },
}


def _csv(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf"), "CSV must start with the UTF-8 BOM for Excel"
    return list(csv.reader(io.StringIO(body[3:].decode("utf-8"))))


def _xlsx(body: bytes) -> list[list[object]]:
    sheet = load_workbook(io.BytesIO(body), read_only=True).worksheets[0]
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def _ids(rows: Sequence[Sequence[object]]) -> set[int]:
    return {int(str(row[0])) for row in rows[1:]}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_every_role_exports_exactly_its_own_scope_as_csv_and_xlsx(
    client: TestClient, world: World, kind: str
) -> None:
    users = world.cast.by_role()
    for role in ROLES:
        headers = world.cast.headers(users[role])
        want = {world.ids[name] for name in EXPECTED[kind][role]}
        as_csv = client.get(f"{URL}/{kind}", headers=headers)
        assert as_csv.status_code == 200, (role, as_csv.text)
        assert as_csv.headers["content-type"].startswith("text/csv")
        assert _ids(_csv(as_csv.content)) == want, (kind, role, "csv")
        if role in ("coordinator", "expert"):  # the same statement feeds both writers
            as_xlsx = client.get(f"{URL}/{kind}", params={"format": "xlsx"}, headers=headers)
            assert as_xlsx.status_code == 200, (role, as_xlsx.text)
            assert as_xlsx.headers["content-type"] == XLSX
            assert _ids(_xlsx(as_xlsx.content)) == want, (kind, role, "xlsx")


def test_headers_and_categories_are_chinese_by_default_and_english_on_request(
    client: TestClient, world: World
) -> None:
    headers = world.cast.headers(world.cast.admin)
    zh = _csv(client.get(f"{URL}/requests", headers=headers).content)
    assert zh[0][:3] == ["编号", "企业名称", "统一社会信用代码"]
    by_id = {int(row[0]): row for row in zh[1:]}
    category = zh[0].index("类别")
    assert by_id[world.ids["r2"]][category] == "降本(原材料、物流)"
    assert by_id[world.ids["r1"]][zh[0].index("方案摘要")] == "融资对接方案"
    assert by_id[world.ids["r1"]][zh[0].index("状态")] == "已匹配"

    en = _csv(
        client.get(
            f"{URL}/requests", headers=headers | {"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"}
        ).content
    )
    assert en[0][:2] == ["ID", "Enterprise"]
    assert {row[en[0].index("Category")] for row in en[1:]} == {
        "Financing",
        "Cost reduction (raw materials, logistics)",
    }
    forced = _csv(
        client.get(
            f"{URL}/requests", params={"lang": "zh"}, headers=headers | {"Accept-Language": "en"}
        ).content
    )
    assert forced[0][0] == "编号"


def test_user_text_never_becomes_a_formula(client: TestClient, world: World) -> None:
    headers = world.cast.headers(world.cast.admin)
    rows = _csv(client.get(f"{URL}/requests", headers=headers).content)
    title = rows[0].index("标题")
    by_id = {int(row[0]): row for row in rows[1:]}
    assert by_id[world.ids["r1"]][title] == "'=HYPERLINK(1)"
    body = client.get(f"{URL}/requests", params={"format": "xlsx"}, headers=headers).content
    sheet = load_workbook(io.BytesIO(body)).worksheets[0]
    cells = [row[title] for row in sheet.iter_rows(min_row=2)]
    stored = next(c for c in cells if c.value == "=HYPERLINK(1)")
    assert stored.data_type == "s"


def test_filters_are_the_lists_filters(client: TestClient, world: World) -> None:
    headers = world.cast.headers(world.cast.admin)
    financing = _csv(
        client.get(f"{URL}/requests", params={"category": "financing"}, headers=headers).content
    )
    assert _ids(financing) == {world.ids["r1"]}
    offered = _csv(
        client.get(f"{URL}/assignments", params={"status": "proposed"}, headers=headers).content
    )
    assert _ids(offered) == {world.ids["a3"]}
    platforms = _csv(
        client.get(f"{URL}/providers", params={"kind": "platform"}, headers=headers).content
    )
    assert _ids(platforms) == {world.ids["platform"]}
    bad = client.get(f"{URL}/requests", params={"category": "FINANCING!"}, headers=headers)
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


def test_format_follows_accept_and_refuses_what_it_cannot_give(
    client: TestClient, world: World
) -> None:
    headers = world.cast.headers(world.cast.coordinator)
    wants_xlsx = client.get(f"{URL}/plans", headers=headers | {"Accept": f"{XLSX}, */*;q=0.1"})
    assert wants_xlsx.headers["content-type"] == XLSX
    assert _ids(_xlsx(wants_xlsx.content)) == {world.ids["p1"]}
    json_only = client.get(f"{URL}/plans", headers=headers | {"Accept": "application/json"})
    assert json_only.status_code == 406
    assert json_only.json()["field"] == "format"
    assert "attachment" in wants_xlsx.headers["content-disposition"]


def test_stats_export_is_for_staff_inside_their_regions(client: TestClient, world: World) -> None:
    cast = world.cast
    rows = _csv(
        client.get(
            f"{URL}/stats", params={"group_by": "category"}, headers=cast.headers(cast.coordinator)
        ).content
    )
    assert rows[0][:2] == ["类别", "提交"]
    assert rows[1][:2] == ["合计", "1"]  # only R1 is in "35"
    assert [row[0] for row in rows[2:]] == ["融资"]
    for role in ("enterprise", "expert", "platform"):
        refused = client.get(f"{URL}/stats", headers=cast.headers(cast.by_role()[role]))
        assert refused.status_code == 403, role
    outside = client.get(
        f"{URL}/stats", params={"region": "41"}, headers=cast.headers(cast.coordinator)
    )
    assert outside.status_code == 403
    anonymous = client.get(f"{URL}/requests")
    assert anonymous.status_code == 401


@pytest.mark.parametrize("group_by", ["provider", "region"])
def test_stats_export_has_every_group_not_a_page(
    client: TestClient, world: World, db: Session, group_by: str
) -> None:
    """``GET /stats`` pages its groups; the export streams all of them, in the same order."""
    for a in db.scalars(select(Assignment)):
        if a.status is AssignmentStatus.OFFERED:
            a.offered_at = utc_now()
    db.commit()
    headers = world.cast.headers(world.cast.admin)
    params = {"group_by": group_by, "lang": "en"}
    pages = [client.get("/api/v1/stats", params={**params, "limit": 1}, headers=headers).json()]
    while pages[-1]["next_cursor"] and len(pages) < 10:
        cursor = pages[-1]["next_cursor"]
        pages.append(
            client.get(
                "/api/v1/stats", params={**params, "limit": 1, "cursor": cursor}, headers=headers
            ).json()
        )
    groups = [g for page in pages for g in page["groups"]]
    assert len(groups) == pages[0]["total_groups"] == 2
    rows = _csv(client.get(f"{URL}/stats", params=params, headers=headers).content)
    assert rows[1][0] == "Total"
    assert [row[0] for row in rows[2:]] == [g["label"] or g["key"] for g in groups]
    assert [int(row[1]) for row in rows[2:]] == [g["funnel"]["submitted"] for g in groups]


def test_columns_follow_the_need_to_know_of_the_per_role_views(
    client: TestClient, world: World
) -> None:
    cast = world.cast

    def header(kind: str, who: str) -> list[str]:
        body = client.get(f"{URL}/{kind}", headers=cast.headers(cast.by_role()[who])).content
        return _csv(body)[0]

    # A provider reads the enterprise's contact card and a plan's head, not the whole picture.
    assert {"统一社会信用代码", "培育层级", "方案摘要"}.isdisjoint(header("requests", "expert"))
    assert {"方案摘要", "推荐政策", "里程碑数"}.isdisjoint(header("plans", "expert"))
    assert {"统一社会信用代码", "方案摘要"} <= set(header("requests", "coordinator"))
    # An enterprise reads its providers' cards: no capacity, coverage or activity.
    assert {"容量", "服务地区", "启用"}.isdisjoint(header("providers", "enterprise"))
    assert {"联系邮箱", "评分"} <= set(header("providers", "enterprise"))
    # The parties of an assignment do not see draft runs or pins.
    for who in ("expert", "enterprise"):
        assert {"匹配运行编号", "已锁定"}.isdisjoint(header("assignments", who)), who
    assert {"匹配运行编号", "已锁定"} <= set(header("assignments", "coordinator"))
