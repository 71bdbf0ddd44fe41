"""Publish alone, repeatably: the same draft published by one or more checkouts of the code.

``bench/service.py`` times publish once per seeded database, between other stages and with
four other processes sharing two cores: its figure moved by ~10-20 % from run to run. Here
one PostgreSQL database is seeded and its largest province's run written once (the template),
and every trial publishes that run on an identical copy of it (``CREATE DATABASE ... TEMPLATE``),
in a fresh process of the checkout under test, the checkouts interleaved. Each trial reports
the wall time of publish and its commit, this process's CPU time and the CPU time of the
PostgreSQL backend serving it (``/proc/PID/schedstat``: the server runs on this machine),
whose sum is what a publish costs the machine, however busy it is otherwise.

Usage::

    .venv/bin/python bench/publish_alone.py --enterprises 10k --providers 10k --repeats 3 \
        --code . --code /work/wt/base
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch import Store, count

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TABLES = ("help_requests", "assignments", "plans", "enterprises", "providers", "events")

# Run in a fresh process of the checkout under test (its own ``app`` first on sys.path).
TRIAL = """
import cProfile, gc, json, os, pstats, sys, time
from sqlalchemy import select, text
import app
from app.common.principal import Principal
from app.db import make_engine, make_session_factory
from app.match_runs import publishing
from app.models import MatchRun, MatchRunStatus, Role, User
from app.settings import Settings

def backend_ns(pid):
    if pid is None:  # SQLite: the database is this process
        return 0
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])

engine = make_engine(os.environ["DATABASE_URL"])
if os.environ.get("PROFILE"):  # each statement's time, after the profile
    from sqlalchemy import event
    timings = []

    @event.listens_for(engine, "before_cursor_execute")
    def _started(conn, cursor, statement, parameters, context, executemany):
        conn.info["started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _done(conn, cursor, statement, parameters, context, executemany):
        timings.append((time.perf_counter() - conn.info["started"], " ".join(statement.split())))
postgresql = engine.dialect.name == "postgresql"
try:  # the service's background WAL checkpoints, where the checkout under test has them
    from app.sqlite_checkpoints import start_checkpointer
except ImportError:
    start_checkpointer = None
checkpointer = start_checkpointer(engine, interval=1.0) if start_checkpointer else None
inline_max = Settings.model_fields["plan_preparation_inline_max"].default
with make_session_factory(engine)() as session:
    for table in json.loads(os.environ["PREWARM"]) if postgresql else ():
        session.execute(text("SELECT pg_prewarm(:t)"), {"t": table})
    run = session.scalar(select(MatchRun).where(MatchRun.status == MatchRunStatus.SUCCEEDED))
    admin = session.scalar(select(User).where(User.role == Role.ADMIN).order_by(User.id))
    principal = Principal.of(admin)
    write = run.stats["seconds"]["write"]
    pid = session.scalar(text("SELECT pg_backend_pid()")) if postgresql else None
    session.commit()
    gc.collect()
    profile = cProfile.Profile() if os.environ.get("PROFILE") else None
    wall, cpu, backend = time.perf_counter(), time.process_time(), backend_ns(pid)
    if profile:
        profile.enable()
    done = publishing.publish(session, principal=principal, run=run, inline_max=inline_max)
    session.commit()
    if profile:
        profile.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if profile:
        pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
        for seconds, sql in timings[-40:]:
            print(f"{seconds * 1000:8.1f} ms  {sql[:1500]}", file=sys.stderr)
    backend = (backend_ns(pid) - backend) / 1e9
    print(json.dumps({"wall": wall, "cpu": cpu, "backend": backend, "write": write,
                      "offered": len(done.offered), "plans": len(done.plan_ids),
                      "app": app.__file__}))
if checkpointer is not None:
    checkpointer.stop()
engine.dispose()
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--enterprises", type=count, default=count("10k"))
    parser.add_argument("--providers", type=count, default=count("10k"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--code", action="append", help="checkout to publish with (repeatable; default: this one)"
    )
    parser.add_argument(
        "--template",
        help="template database (PostgreSQL: a name; SQLite: a file) to keep and reuse "
        "(made when missing; not dropped)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="print each trial's cProfile (cumulative)"
    )
    return parser


def _env(url: str, code: Path, profile: bool = False) -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": url,
        "PYTHONPATH": str(code),
        "ZHUQI_SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
        "ZHUQI_EMBEDDED_WORKER": "false",
        "PREWARM": json.dumps(TABLES),
        "PROFILE": "1" if profile else "",
    }


def make_template(args: argparse.Namespace, store: Store, name: str) -> None:
    """Seed, queue a run for the largest province and let a worker write its draft."""
    store.create(name)
    url = store.url(name)
    command = [PYTHON, "-m", "seed", "--database-url", url, "--enterprises", str(args.enterprises)]
    command += ["--providers", str(args.providers)]
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    queue = """
from sqlalchemy import func, select
from app.common.principal import Principal
from app.db import make_engine, make_session_factory
from app.match_runs import service
from app.match_runs.schemas import MatchRunCreate
from app.models import Enterprise, HelpRequest, Role, User
import os
engine = make_engine(os.environ["DATABASE_URL"])
with make_session_factory(engine).begin() as session:
    province = func.substr(Enterprise.region_code, 1, 2)
    region = session.execute(
        select(province).join(HelpRequest, HelpRequest.enterprise_id == Enterprise.id)
        .where(HelpRequest.status == "triaged").group_by(province)
        .order_by(func.count().desc()).limit(1)).scalar_one()
    admin = session.scalar(select(User).where(User.role == Role.ADMIN).order_by(User.id))
    service.create(session, principal=Principal.of(admin),
                   data=MatchRunCreate(scope_region=region))
engine.dispose()
"""
    subprocess.run([PYTHON, "-c", queue], cwd=ROOT, env=_env(url, ROOT), check=True)
    worker = [PYTHON, "-c", "from app.cli import main; main()", "worker", "--once"]
    subprocess.run(worker, cwd=ROOT, env=_env(url, ROOT), check=True, stdout=subprocess.DEVNULL)


def trial(store: Store, template: str, code: Path, profile: bool) -> dict[str, Any]:
    """One publish on a fresh copy of the template, by ``code``'s publish."""
    name = store.copy(template)
    try:
        done = subprocess.run(
            [PYTHON, "-c", TRIAL],
            cwd=code,
            env=_env(store.url(name), code, profile),
            check=True,
            capture_output=True,
            text=True,
        )
        if profile:
            print(done.stderr)
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        store.drop(name)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    codes = [Path(c).resolve() for c in (args.code or [str(ROOT)])]
    store = Store(args.database)
    template = args.template or store.new_name("pubtmpl")
    if not store.exists(template):
        started = time.perf_counter()
        make_template(args, store, template)
        print(f"template {template}: {time.perf_counter() - started:.0f} s", flush=True)
    store.prepare(template)
    try:
        results: dict[Path, list[dict[str, Any]]] = {code: [] for code in codes}
        for repeat in range(args.repeats):
            for code in codes:
                result = trial(store, template, code, args.profile)
                results[code].append(result)
                print(
                    f"  {repeat + 1} {code}: wall {result['wall']:.3f} s, cpu {result['cpu']:.3f}"
                    f" s, backend {result['backend']:.3f} s ({result['offered']} offers, "
                    f"{result['plans']} plans; app from {Path(result['app']).parents[1]})",
                    flush=True,
                )
        for code, rows in results.items():
            med = {k: statistics.median(r[k] for r in rows) for k in ("wall", "cpu", "backend")}
            print(
                f"{code}: median of {len(rows)}: wall {med['wall']:.3f} s, cpu {med['cpu']:.3f} s,"
                f" backend {med['backend']:.3f} s, cpu+backend {med['cpu'] + med['backend']:.3f}"
                f" s (write stage {rows[0]['write']:.3f} s)"
            )
    finally:
        if not args.template:
            store.drop(template)


if __name__ == "__main__":
    main()
