"""Benchmark exports: 100,000 help requests as CSV and XLSX, on SQLite and PostgreSQL.

For each backend (fresh database, dropped afterwards) it stores ``--rows`` requests of 200
enterprises with a raw executemany, then times ``export_service.export_requests`` (an admin's
export: the same statement as the list, read ``yield_per`` batches into a spooled file) and
its peak resident memory (``VmHWM`` of a fresh subprocess per export — Linux; ``ru_maxrss``
would carry the parent's peak over ``fork`` — less what the process held before the export),
against the **peer**: the naive export — the same statement
read with ``.all()`` and the same rows written to an in-memory buffer.

Usage::

    .venv/bin/python bench/exports.py                    # 100,000 rows, both databases
    .venv/bin/python bench/exports.py --rows 20000 --backends sqlite
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from imports import databases
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from app.common.codes import make_uscc
from app.common.principal import Principal
from app.db import make_engine
from app.exports import columns, labels
from app.exports import repository as export_repository
from app.exports import service as export_service
from app.exports.labels import Lang
from app.exports.writers import Format, write_csv
from app.migrate import upgrade
from app.models import Enterprise, HelpRequest, Role, table_of
from app.requests.repository import RequestFilter

ADMIN = Principal(user_id=0, email="bench@zhuqi.bench", role=Role.ADMIN)


def _fill(engine: Engine, rows: int) -> None:
    enterprises = [
        {
            "id": i + 1,
            "name": f"福建基准测试制造有限公司{i}",
            "uscc": make_uscc("350582", 700_000 + i),
            "region_code": "350582",
            "industry_code": "C17",
            "size": "small",
            "tier": "specialised",
        }
        for i in range(200)
    ]
    requests = [
        {
            "enterprise_id": 1 + i % 200,
            "category": ("financing", "cost_reduction", "export")[i % 3],
            "title": f"原材料涨价,流动资金紧张,需要融资对接 {i}",
            "description": "订单下滑,回款周期变长,希望对接银行与供应链金融" * 2,
            "urgency": 1 + i % 5,
            "severity": "ordinary",
            "status": "submitted",
        }
        for i in range(rows)
    ]
    with Session(engine) as session, session.begin():
        session.execute(insert(table_of(Enterprise)), enterprises)
        session.execute(insert(table_of(HelpRequest)), requests)


def _high_water_kib() -> int:
    """This process's own peak RSS (a new address space starts at zero after exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _child(name: str, url: str) -> None:
    """One export in this fresh process; prints seconds, peak RSS growth (MiB), file bytes."""
    engine = make_engine(url)
    work = {
        "ours csv": _ours(engine, Format.CSV),
        "ours xlsx": _ours(engine, Format.XLSX),
        "naive csv": _naive(engine),
    }[name]
    with Session(engine) as session:  # connect and warm up before the baseline
        labels.load(session, Lang.ZH)
    before = _high_water_kib()
    started = time.perf_counter()
    size = work()
    seconds = time.perf_counter() - started
    peak = _high_water_kib()
    grown = (peak - before) / 1024
    print(json.dumps({"seconds": seconds, "peak": peak / 1024, "grown": grown, "size": size}))


def _measure(name: str, url: str) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", name, "--url", url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def _ours(engine: Engine, fmt: Format) -> Callable[[], int]:
    def work() -> int:
        with Session(engine) as session, session.begin():
            export = export_service.export_requests(
                session, principal=ADMIN, filters=RequestFilter(), fmt=fmt, lang=Lang.ZH
            )
        with export.file as file:
            return file.seek(0, 2)

    return work


def _naive(engine: Engine) -> Callable[[], int]:
    def work() -> int:
        with Session(engine) as session, session.begin():
            names = labels.load(session, Lang.ZH)
            statement = export_repository.requests(ADMIN, RequestFilter(), columns.REQUESTS)
            rows = session.execute(statement).all()
            out = io.BytesIO()
            rendered = [columns.render(columns.REQUESTS, row, names) for row in rows]
            write_csv(columns.headers(columns.REQUESTS, names), rendered, out)
            return len(out.getvalue())

    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.url)
        return
    print(f"{args.rows} help requests; peer = the same statement read with .all() into memory")
    print(
        f"{'database':<11}{'export':<12}{'seconds':>9}{'peak RSS MiB':>14}"
        f"{'growth MiB':>12}{'file MiB':>10}"
    )
    with databases(args.backends) as dbs:
        for backend, url in dbs:
            upgrade(url=url)
            engine = make_engine(url)
            _fill(engine, args.rows)
            engine.dispose()
            for name in ("ours csv", "ours xlsx", "naive csv"):
                r = _measure(name, url)
                size = r["size"] / 2**20
                print(
                    f"{backend:<11}{name:<12}{r['seconds']:>9.2f}{r['peak']:>14.1f}"
                    f"{r['grown']:>12.1f}{size:>10.1f}"
                )


if __name__ == "__main__":
    main()
