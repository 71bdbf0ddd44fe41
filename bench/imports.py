"""Benchmark ``zhuqi`` imports: 10,000 rows per kind, on SQLite and PostgreSQL.

For each backend (a fresh SQLite file; a fresh PostgreSQL database on 127.0.0.1:5432, dropped
afterwards) and each kind (enterprises, then requests for them, then providers):

1. the **peer**: a raw ``executemany`` INSERT of the very same rows, already parsed — the
   least any import must do to store them — in its own transaction, rolled back;
2. the **import**: ``import_service.import_file`` on the CSV file (read, every row through
   the API's schema and scope checks, natural-key look-ups, INSERT ... RETURNING, audit
   events, ANALYZE / PRAGMA optimize), committed;
3. the **re-import** of the same file, committed: it must change nothing.

It prints seconds, rows per second and the import / peer ratio, and fails (exit 1) if a
re-import changed anything or an import stored the wrong count.

Usage::

    .venv/bin/python bench/imports.py                 # 10,000 rows, both databases
    .venv/bin/python bench/imports.py --rows 2000 --backends sqlite
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.orm import Session

from app.common.codes import make_uscc
from app.common.principal import Principal
from app.db import make_engine
from app.imports import service as import_service
from app.imports.columns import Kind
from app.migrate import upgrade
from app.models import Enterprise, HelpRequest, Provider, Role, User

PG_SERVER = os.environ.get("ZHUQI_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
REGIONS = ("350582", "350583", "350502", "350102", "350203", "350181")
INDUSTRIES = ("C17", "C18", "C19", "C34", "C39", "I65")
CATEGORIES = ("financing", "cost_reduction", "digital_transformation", "technology_rd")


def _csv(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def enterprise_rows(n: int) -> tuple[bytes, list[dict[str, Any]]]:
    header = [
        "统一社会信用代码",
        "企业名称",
        "行政区划代码",
        "行业代码",
        "企业规模",
        "培育层级",
        "从业人数",
    ]
    rows: list[list[Any]] = [header]
    parsed: list[dict[str, Any]] = []
    for i in range(n):
        region = REGIONS[i % len(REGIONS)]
        values = {
            "uscc": make_uscc(region, 500_000 + i),
            "name": f"福建基准测试制造有限公司{i}",
            "region_code": region,
            "industry_code": INDUSTRIES[i % len(INDUSTRIES)],
            "size": ("micro", "small", "medium")[i % 3],
            "tier": ("none", "innovative", "specialised")[i % 3],
            "headcount": 10 + i % 500,
        }
        rows.append(list(values.values()))
        parsed.append(values)
    return _csv(rows), parsed


def request_rows(usccs: list[str], ids: list[int]) -> tuple[bytes, list[dict[str, Any]]]:
    header = ["统一社会信用代码", "类别", "标题", "描述", "紧急程度"]
    rows: list[list[Any]] = [header]
    parsed: list[dict[str, Any]] = []
    for i, (uscc, enterprise_id) in enumerate(zip(usccs, ids, strict=True)):
        category = CATEGORIES[i % len(CATEGORIES)]
        title = f"原材料涨价,流动资金紧张 {i}"
        description = "订单下滑,回款周期变长,需要融资与降本方面的帮助"
        rows.append([uscc, category, title, description, 1 + i % 5])
        parsed.append(
            {
                "enterprise_id": enterprise_id,
                "category": category,
                "title": title,
                "description": description,
                "urgency": 1 + i % 5,
                "severity": "ordinary",
                "status": "submitted",
            }
        )
    return _csv(rows), parsed


def provider_rows(n: int) -> tuple[bytes, list[dict[str, Any]]]:
    header = ["类型", "名称", "所属单位", "服务类别", "服务地区", "所在地区", "容量", "联系邮箱"]
    rows: list[list[Any]] = [header]
    parsed: list[dict[str, Any]] = []
    for i in range(n):
        region = REGIONS[i % len(REGIONS)]
        skills = {CATEGORIES[i % 4]: 1 + i % 3, CATEGORIES[(i + 1) % 4]: 2}
        values = {
            "kind": "expert",
            "name": f"基准专家{i}",
            "organisation": "福建省中小企业服务中心",
            "skills": skills,
            "regions": ["35"],
            "home_region_code": region,
            "capacity": 1 + i % 5,
            "contact_email": f"bench{i}@experts.example.cn",
        }
        skill_text = "; ".join(f"{k}:{v}" for k, v in skills.items())
        rows.append(
            [
                "专家",
                values["name"],
                values["organisation"],
                skill_text,
                "35",
                region,
                values["capacity"],
                values["contact_email"],
            ]
        )
        parsed.append(values)
    return _csv(rows), parsed


@contextmanager
def databases(backends: list[str]) -> Iterator[Iterator[tuple[str, str]]]:
    made: list[Callable[[], None]] = []

    def generate() -> Iterator[tuple[str, str]]:
        for backend in backends:
            if backend == "sqlite":
                folder = tempfile.mkdtemp(prefix="zhuqi-bench-")
                yield backend, f"sqlite:///{folder}/bench.db"
            else:
                name = f"zhuqi_bench_{uuid.uuid4().hex[:10]}"
                admin = create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")
                with admin.connect() as connection:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))

                def drop(admin: Engine = admin, name: str = name) -> None:
                    with admin.connect() as connection:
                        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    admin.dispose()

                made.append(drop)
                yield backend, f"{PG_SERVER}/{name}"

    try:
        yield generate()
    finally:
        for drop in made:
            drop()


def _coordinator(engine: Engine) -> Principal:
    with Session(engine) as session, session.begin():
        user = User(
            email="bench.coordinator@zhuqi.bench",
            password_hash="!",
            full_name="bench",
            role=Role.COORDINATOR,
            region_prefixes=["35"],
        )
        session.add(user)
        session.flush()
        return Principal.of(user)


def _peer(engine: Engine, model: type[Any], rows: list[dict[str, Any]]) -> float:
    with Session(engine) as session:
        session.begin()
        started = time.perf_counter()
        session.execute(insert(model.__table__), rows)
        session.flush()
        seconds = time.perf_counter() - started
        session.rollback()
    return seconds


def _import(engine: Engine, principal: Principal, kind: Kind, data: bytes) -> tuple[float, Any]:
    with Session(engine) as session, session.begin():
        started = time.perf_counter()
        report = import_service.import_file(session, principal=principal, kind=kind, data=data)
        session.commit()
        return time.perf_counter() - started, report


def run(backend: str, url: str, n: int) -> list[tuple[str, str, float, float, float, str]]:
    upgrade(url=url)
    engine = make_engine(url)
    principal = _coordinator(engine)
    results = []
    failures = []

    def measure(kind: Kind, model: type[Any], data: bytes, parsed: list[dict[str, Any]]) -> None:
        peer = _peer(engine, model, parsed)
        took, report = _import(engine, principal, kind, data)
        again, second = _import(engine, principal, kind, data)
        if report.created != n:
            failures.append(f"{backend} {kind}: created {report.created}, wanted {n}")
        if (second.created, second.updated, second.unchanged) != (0, 0, n):
            failures.append(f"{backend} {kind}: re-import was not a no-op: {second}")
        results.append((backend, kind.value, took, peer, again, f"{took / peer:.1f}×"))

    data, parsed = enterprise_rows(n)
    measure(Kind.ENTERPRISES, Enterprise, data, parsed)
    usccs = [row["uscc"] for row in parsed]
    with Session(engine) as session:
        ids_by_uscc = {
            str(u): int(i) for u, i in session.execute(select(Enterprise.uscc, Enterprise.id))
        }
    data, parsed = request_rows(usccs, [ids_by_uscc[u] for u in usccs])
    measure(Kind.REQUESTS, HelpRequest, data, parsed)
    data, parsed = provider_rows(n)
    measure(Kind.PROVIDERS, Provider, data, parsed)
    engine.dispose()
    for failure in failures:
        print("FAIL", failure)
    if failures:
        raise SystemExit(1)
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    return parser


def main() -> None:
    args = build_parser().parse_args()
    print(f"{args.rows} rows per kind; peer = raw executemany INSERT of the same parsed rows")
    print(
        f"{'database':<11}{'kind':<13}{'import s':>9}{'rows/s':>9}{'peer s':>9}{'re-import s':>13}{'ratio':>8}"
    )
    with databases(args.backends) as dbs:
        for backend, url in dbs:
            for db, kind, took, peer, again, ratio in run(backend, url, args.rows):
                print(
                    f"{db:<11}{kind:<13}{took:>9.2f}{args.rows / took:>9.0f}{peer:>9.2f}{again:>13.2f}{ratio:>8}"
                )


if __name__ == "__main__":
    main()
