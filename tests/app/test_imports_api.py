"""``POST /imports/{kind}``: every row checked by the API's rules, all or nothing, idempotent.

Coordinator ``coordinator`` covers "35" (Fujian); ``cast.ent`` is in Jinjiang (350582) and
``cast.other_ent`` in Zhengzhou (410105).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.common.codes import make_uscc
from app.imports import cli
from app.imports.columns import Kind
from app.imports.service import ImportRejected
from app.models import Enterprise, Event, HelpRequest, Provider
from tests.app.conftest import Cast

URL = "/api/v1/imports"
E_HEADER = ["统一社会信用代码", "企业名称", "行政区划代码", "行业代码", "企业规模", "培育层级"]


def _csv(rows: Sequence[Sequence[Any]], encoding: str = "utf-8-sig") -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


def _xlsx(rows: Sequence[Sequence[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _post(client: TestClient, cast: Cast, kind: str, body: bytes, who: str = "coordinator") -> Any:
    headers = cast.headers(cast.by_role()[who])
    return client.post(f"{URL}/{kind}", files={"file": ("f", body)}, headers=headers)


def _count(db: Session, model: type[Any]) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def _enterprise_rows(serials: range, region: str = "350582") -> list[list[Any]]:
    return [
        [make_uscc(region, 900_000 + n), f"导入测试企业{n}", region, "C17", "小型", "专精特新"]
        for n in serials
    ]


def test_enterprises_import_then_reimport_changes_nothing(
    client: TestClient, db: Session, cast: Cast
) -> None:
    rows = _enterprise_rows(range(3))
    first = _post(client, cast, "enterprises", _csv([E_HEADER, *rows]))
    assert first.status_code == 200, first.text
    assert first.json() | {"seconds": 0} == {
        "kind": "enterprises",
        "rows": 3,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "ignored_columns": [],
        "seconds": 0,
    }
    stored = db.scalar(select(Enterprise).where(Enterprise.uscc == rows[0][0]))
    assert stored is not None
    assert (stored.size, stored.tier, stored.version) == ("small", "specialised", 1)
    # Staff set the tier: verified, no claim waiting (as a staff create through the API).
    assert (stored.claimed_tier, stored.tier_verified_at is not None) == (None, True)
    events = _count(db, Event)

    again = _post(client, cast, "enterprises", _csv([E_HEADER, *rows]))
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 3)
    assert _count(db, Event) == events

    rows[1][1] = "改名后的企业"
    changed = _post(client, cast, "enterprises", _csv([E_HEADER, *rows]))
    assert (changed.json()["updated"], changed.json()["unchanged"]) == (1, 2)
    db.expire_all()
    renamed = db.scalar(select(Enterprise).where(Enterprise.uscc == rows[1][0]))
    assert renamed is not None
    assert (renamed.name, renamed.version) == ("改名后的企业", 2)
    assert _count(db, Event) == events + 1


def test_one_bad_row_stores_nothing_and_every_bad_row_is_reported(
    client: TestClient, db: Session, cast: Cast
) -> None:
    rows = _enterprise_rows(range(4))
    rows[1][0] = rows[1][0][:-1] + ("0" if rows[1][0][-1] != "0" else "1")  # wrong check char
    rows[2][2] = "410105"  # Zhengzhou: outside the coordinator's "35"
    rows[3][4] = "huge"
    rows.append(list(rows[0]))  # the same USCC twice
    before = (_count(db, Enterprise), _count(db, Event))

    refused = _post(client, cast, "enterprises", _csv([E_HEADER, *rows]))
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert body["field"] == "file"
    found = {(e["row"], e["column"], e["field"]) for e in body["errors"]}
    assert found == {
        (3, "统一社会信用代码", "uscc"),
        (4, "行政区划代码", "region_code"),
        (5, "企业规模", "size"),
        (6, "统一社会信用代码", "uscc"),
    }
    assert all(e["message"] for e in body["errors"])
    assert (_count(db, Enterprise), _count(db, Event)) == before


def test_only_staff_import_and_coordinators_only_inside_their_regions(
    client: TestClient, db: Session, cast: Cast
) -> None:
    body = _csv([E_HEADER, *_enterprise_rows(range(1))])
    for who in ("enterprise", "expert", "platform"):
        assert _post(client, cast, "enterprises", body, who).status_code == 403, who
    outside = _post(client, cast, "enterprises", body, "other_coordinator")
    assert outside.status_code == 422
    assert [e["field"] for e in outside.json()["errors"]] == ["region_code"]
    assert _post(client, cast, "enterprises", body, "admin").status_code == 200
    # Updating an enterprise registered in another coordinator's region is refused too.
    moved = [[cast.other_ent.uscc, "郑州企业", "350582", "C17", "小型", "专精特新"]]
    refused = _post(client, cast, "enterprises", _csv([E_HEADER, *moved]))
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "uscc"


def test_requests_import_by_enterprise_uscc_and_natural_key(
    client: TestClient, db: Session, cast: Cast
) -> None:
    header = ["统一社会信用代码", "类别", "标题", "紧急程度", "期望解决日期"]
    rows: list[list[Any]] = [
        [cast.ent.uscc, "融资", "设备更新贷款", 4, ""],
        [cast.ent.uscc, "digital_transformation", "ERP 上线", "3", "2099-01-31"],
    ]
    done = _post(client, cast, "requests", _xlsx([header, *rows]))
    assert done.status_code == 200, done.text
    assert (done.json()["created"], done.json()["unchanged"]) == (2, 0)
    stored = db.scalars(select(HelpRequest).where(HelpRequest.enterprise_id == cast.ent.id)).all()
    assert {(r.category, r.title, r.status) for r in stored} == {
        ("financing", "设备更新贷款", "submitted"),
        ("digital_transformation", "ERP 上线", "submitted"),
    }
    again = _post(client, cast, "requests", _xlsx([header, *rows]))
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 2)

    bad = [
        [cast.other_ent.uscc, "融资", "郑州的诉求", 3, ""],  # outside "35"
        [make_uscc("350582", 777), "融资", "没有这家企业", 3, ""],
        [cast.ent.uscc, "no_such_category", "类别不存在", 3, ""],
        [cast.ent.uscc, "融资", "过去的日期", 3, "2001-01-01"],
        [cast.ent.uscc, "融资", "紧急程度超出", 9, ""],
        [cast.ent.uscc, "融资", "新诉求", 3, ""],
        [cast.ent.uscc, "融资", "新诉求", 3, ""],
    ]
    count = _count(db, HelpRequest)
    refused = _post(client, cast, "requests", _xlsx([header, *bad]))
    assert refused.status_code == 422
    assert [(e["row"], e["field"]) for e in refused.json()["errors"]] == [
        (2, "uscc"),
        (3, "uscc"),
        (4, "category"),
        (5, "wanted_by_date"),
        (6, "urgency"),
        (8, "title"),
    ]
    assert _count(db, HelpRequest) == count


def test_a_team_request_is_imported_and_exported_with_its_size(
    client: TestClient, db: Session, cast: Cast
) -> None:
    header = ["统一社会信用代码", "类别", "标题", "紧急程度", "所需服务方数"]
    rows: list[list[Any]] = [
        [cast.ent.uscc, "融资", "三方会诊", 3, 3],
        [cast.ent.uscc, "融资", "单人即可", 3, ""],
    ]
    done = _post(client, cast, "requests", _csv([header, *rows]))
    assert done.status_code == 200, done.text
    stored = db.scalars(select(HelpRequest).where(HelpRequest.enterprise_id == cast.ent.id)).all()
    assert {r.title: r.providers_wanted for r in stored} == {"三方会诊": 3, "单人即可": 1}
    too_many = [[cast.ent.uscc, "融资", "十个人", 3, 10]]
    refused = _post(client, cast, "requests", _csv([header, *too_many]))
    assert refused.status_code == 422
    assert [(e["row"], e["field"]) for e in refused.json()["errors"]] == [(2, "providers_wanted")]
    exported = client.get(
        "/api/v1/exports/requests", params={"format": "csv"}, headers=cast.headers(cast.coordinator)
    )
    assert exported.status_code == 200
    table = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    column = table[0].index("所需服务方数")
    assert {row[column] for row in table[1:]} == {"3", "1"}


def test_providers_round_trip_through_their_export(
    client: TestClient, db: Session, cast: Cast
) -> None:
    header = ["类型", "名称", "服务类别", "服务地区", "所在地区", "可远程", "容量", "联系邮箱"]
    rows = [
        ["专家", "导入专家甲", "融资 3; 数字化转型 2", "35, 4101", "350582", "是", 2, "A@x.cn"],
        ["platform", "导入平台乙", "financing:1", "", "350500", "否", 10, ""],
    ]
    done = _post(client, cast, "providers", _csv([header, *rows]))
    assert done.status_code == 200, done.text
    assert done.json()["created"] == 2
    expert = db.scalar(select(Provider).where(Provider.name == "导入专家甲"))
    assert expert is not None
    assert (expert.skills, expert.regions, expert.remote_ok, expert.contact_email) == (
        {"financing": 3, "digital_transformation": 2},
        ["35", "4101"],
        True,
        "a@x.cn",
    )
    assert (expert.vetting, expert.vetted_at is not None) == ("approved", True)
    exported = client.get(
        "/api/v1/exports/providers", params={"format": "xlsx"}, headers=cast.headers(cast.admin)
    )
    back = _post(client, cast, "providers", exported.content, "admin")
    assert back.status_code == 200, back.text
    total = _count(db, Provider)
    assert back.json()["unchanged"] == total
    assert (back.json()["created"], back.json()["updated"]) == (0, 0)
    assert "编号" in back.json()["ignored_columns"]

    outside = [["专家", "外省专家", "融资 1", "", "410105", "否", 1, "z@x.cn"]]
    refused = _post(client, cast, "providers", _csv([header, *outside]))
    assert refused.json()["errors"][0]["field"] == "home_region_code"


def test_templates_list_the_columns_and_gb18030_csv_reads(
    client: TestClient, db: Session, cast: Cast
) -> None:
    headers = cast.headers(cast.coordinator)
    template = client.get(f"{URL}/enterprises/template", params={"format": "xlsx"}, headers=headers)
    assert template.status_code == 200
    sheet = load_workbook(io.BytesIO(template.content), read_only=True).worksheets[0]
    first = next(sheet.iter_rows(values_only=True))
    assert first[:3] == ("统一社会信用代码*", "企业名称*", "行政区划代码*")
    en = client.get(f"{URL}/requests/template", params={"lang": "en"}, headers=headers)
    assert en.content.decode("utf-8-sig").splitlines()[0].startswith("USCC*,Category*,Title*")

    # Filled in and saved by Excel on a Chinese Windows: GB 18030, header as downloaded.
    filled = _csv([[*first], *_enterprise_rows(range(50, 52))], encoding="gb18030")
    done = _post(client, cast, "enterprises", filled)
    assert done.status_code == 200, done.text
    assert done.json()["created"] == 2
    missing = _post(client, cast, "enterprises", _csv([["企业名称"], ["某企业"]]))
    assert missing.status_code == 422
    assert "required columns missing" in missing.json()["detail"]
    junk = _post(client, cast, "enterprises", b"PK\x03\x04 not really a zip")
    assert junk.status_code == 422


def test_the_cli_imports_as_the_named_coordinator_with_progress(
    db: Session, cast: Cast, capsys: pytest.CaptureFixture[str]
) -> None:
    body = _csv([E_HEADER, *_enterprise_rows(range(100, 103))])
    report = cli._run(db, Kind.ENTERPRISES, body, cast.coordinator.email)
    assert (report.created, report.unchanged) == (3, 0)
    assert "write" in capsys.readouterr().out  # the bar's stage
    stored = db.scalars(select(Event.actor_id).where(Event.action == "enterprise.imported"))
    assert set(stored) == {cast.coordinator.id}
    with pytest.raises(ImportRejected) as refused:
        cli._run(db, Kind.ENTERPRISES, body, cast.other_coordinator.email)
    cli._print_errors(refused.value)
    assert "行政区划代码" in capsys.readouterr().out
