"""The worker's CPU per declined request, this checkout against another in the same run, and a
digest of what the re-matches wrote (must be equal: a faster drain may not decide otherwise).

A template database is prepared once (``--keep-world NAME``): the demo seeded at ``--size``,
three match runs with weights of their own, and hand offers to triaged requests of the load
bench's four categories (``bench/load.py``'s ``CATEGORIES``), a quarter each made under no
run (defaults) and under each run's weights (``weights_of_run``), as re-match offers are.
Each round copies the template twice and runs one child process per checkout on its copy,
alternating which goes first. A child warms itself as a worker does (``warm_text_memo``, the
re-match text models), drains a first batch unmeasured, then declines batch after batch
(each decline its own transaction, as the API does) and times the drain that re-matches
each batch (``rematch_queue.drain``, what ``Worker.rematch_declined`` runs); then a few idle
drains (one indexed query each). Its digest hashes every assignment row the drains wrote
(request, provider, origin, status, score, breakdown: features, contributions, reasons,
runners-up, weights of run), the unmatched reasons and the events (action, entity, body).

Usage::

    .venv/bin/python bench/rematch_compare.py --compare /work/wt/base-worker --rounds 5 \
        --keep-world zhuqi_w_worker_tpl
    .venv/bin/python bench/rematch_compare.py --keep-world zhuqi_w_worker_tpl --profile out.prof
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
CATEGORIES = ["financing", "cost_reduction", "orders_market", "digital_transformation"]
RUN_WEIGHTS: list[dict[str, Any]] = [
    {"min_score": 0.3, "top_k": 10},
    {"fairness": 0.3, "top_k": 30, "runners_up": 5},
    {"text": 0.6, "skill": 0.2, "min_score": 0.1},
]
TIMES = re.compile(r"\d{4}-\d\d-\d\d[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)?")  # when, not what
FIRST = 12  # the unmeasured first batch
BATCHES = [40, 25, 45, 30, 50, 35]  # tens of declines, as a 5-second gather under load


def _admin(statement: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(statement))
    admin.dispose()


def _offers_file(keep: str) -> Path:
    return Path("/tmp") / f"{keep}.rematch-offers.json"


def prepare(keep: str, size: int) -> None:
    """Seed the template and make its offers (once; reused while its offers file exists)."""
    sys.path.insert(0, str(HERE))
    from sqlalchemy import insert, select, update
    from sqlalchemy.orm import Session

    from app.db import make_engine
    from app.models import (
        Assignment,
        AssignmentOrigin,
        AssignmentStatus,
        HelpRequest,
        MatchRun,
        MatchRunStatus,
        Provider,
        RequestStatus,
        Vetting,
    )

    if _offers_file(keep).exists():
        return
    _admin(f'DROP DATABASE IF EXISTS "{keep}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{keep}"')
    url = f"{PG_SERVER}/{keep}"
    command = [sys.executable, "-m", "seed", "--database-url", url]
    command += ["--enterprises", str(size), "--providers", str(size)]
    subprocess.run(command, cwd=HERE, check=True, stdout=subprocess.DEVNULL)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        runs = [
            session.execute(
                insert(MatchRun)
                .values(weights=w, status=MatchRunStatus.SUCCEEDED)
                .returning(MatchRun.id)
            ).scalar_one()
            for w in RUN_WEIGHTS
        ]
        requests = session.execute(
            select(HelpRequest.id, HelpRequest.category)
            .where(
                HelpRequest.status == RequestStatus.TRIAGED,
                HelpRequest.providers_wanted == 1,
                HelpRequest.category.in_(CATEGORIES),
            )
            .order_by(HelpRequest.id)
        ).all()
        providers = session.execute(
            select(Provider.id, Provider.skills, Provider.capacity)
            .where(Provider.vetting == Vetting.APPROVED, Provider.active.is_(True))
            .order_by(Provider.id)
        ).all()
        load: dict[int, int] = {}
        rows = []
        for n, (request_id, category) in enumerate(requests):
            run = ([None, *runs])[n % 4]
            for provider_id, skills, capacity in providers:
                if category in (skills or {}) and load.get(provider_id, 0) < capacity:
                    load[provider_id] = load.get(provider_id, 0) + 1
                    rows.append(
                        {
                            "request_id": request_id,
                            "provider_id": provider_id,
                            "origin": AssignmentOrigin.MANUAL,
                            "status": AssignmentStatus.OFFERED,
                            "score": 0.5,
                            "breakdown": {"weights_of_run": run} if run else {},
                        }
                    )
                    break
        made = session.execute(insert(Assignment).returning(Assignment.id), rows).scalars().all()
        session.execute(
            update(HelpRequest)
            .where(HelpRequest.id.in_([r["request_id"] for r in rows]))
            .values(status=RequestStatus.MATCHED)
            .execution_options(synchronize_session=False)
        )
    engine.dispose()
    offers = list(made)
    random.Random(7).shuffle(offers)
    _offers_file(keep).write_text(json.dumps(offers))
    print(f"  template {keep}: {len(offers)} offers", flush=True)


# ---------------------------------------------------------------- the child


def child(url: str, offers: list[int], profile: str | None) -> dict[str, Any]:
    sys.path.insert(0, str(Path.cwd()))
    from sqlalchemy import select, text
    from sqlalchemy.orm import Session

    from app.assignments import rematch_queue
    from app.assignments import service as assignment_service
    from app.assignments.schemas import Decline
    from app.assignments.warmup import warm_text_memo
    from app.common.principal import Principal
    from app.db import make_engine, make_session_factory
    from app.models import Assignment, Role, User
    from app.settings import Settings
    from app.supervision import batches

    engine = make_engine(url)
    factory = make_session_factory(engine)
    read = make_session_factory(engine, read_only=True)
    with factory() as session:
        someone = session.scalar(select(User.id).order_by(User.id).limit(1)) or 0
        before = {
            "assignments": session.scalar(text("select coalesce(max(id), 0) from assignments")),
            "events": session.scalar(text("select coalesce(max(id), 0) from events")),
        }

    def decline_all(ids: list[int]) -> None:
        for offer_id in ids:
            with factory() as session, session.begin():
                offer = session.get_one(Assignment, offer_id)
                principal = Principal(
                    user_id=someone, email="b", role=Role.EXPERT, provider_id=offer.provider_id
                )
                assignment_service.decline(
                    session,
                    principal=principal,
                    assignment=offer,
                    data=Decline(reason_code="no_capacity"),
                )

    def drain() -> int:
        return rematch_queue.drain(batches.begin_each(factory), batches.begin_each(factory))

    warm_text_memo(read, limit=Settings.model_fields["text_warmup_providers"].default)
    decline_all(offers[:FIRST])
    drain()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)
    cpu: list[float] = []
    taken_all: list[int] = []
    start = FIRST
    for size in BATCHES:
        ids = offers[start : start + size]
        start += size
        decline_all(ids)
        if profiler:
            profiler.enable()
        t = time.process_time()
        taken = drain()
        cpu.append(time.process_time() - t)
        if profiler:
            profiler.disable()
        taken_all.append(taken)
    t = time.process_time()
    for _ in range(20):
        drain()
    idle = (time.process_time() - t) / 20
    if profiler and profile:
        profiler.dump_stats(profile)
    with Session(engine) as session:
        digest = hashlib.sha256()
        for statement in (
            "select id, request_id, provider_id, origin, status, score, cast(breakdown as text)"
            f" from assignments where id > {before['assignments']} order by id",
            "select request_id, source, reason, cast(removed as text), cast(taken_by as text),"
            " message_zh, message_en from unmatched_reasons order by request_id, source",
            "select action, entity_type, entity_id, region_code, cast(after as text)"
            f" from events where id > {before['events']} order by id",
        ):
            rows: list[Any]
            try:
                rows = list(session.execute(text(statement)).all())
            except Exception as error:  # a table's columns named otherwise: say so
                session.rollback()
                rows = [("error", type(error).__name__)]
            for row in rows:
                digest.update(TIMES.sub("T", repr(tuple(row))).encode())
    engine.dispose()
    declined = sum(BATCHES)
    return {
        "cpu": cpu,
        "taken": taken_all,
        "per_decline_ms": sum(cpu) / max(sum(taken_all), 1) * 1000,
        "declined": declined,
        "idle_ms": idle * 1000,
        "digest": digest.hexdigest()[:16],
    }


# ---------------------------------------------------------------- the parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep-world", default="zhuqi_rematch_compare")
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--compare", default=None, help="another checkout, run alternately")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", default=None, help="cProfile the measured drains here")
    parser.add_argument("--child", nargs=2, metavar=("URL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        offers = json.loads(_offers_file(args.keep_world).read_text())
        result = child(args.child[0], offers, args.profile)
        Path(args.child[1]).write_text(json.dumps(result))
        return
    prepare(args.keep_world, args.size)
    checkouts = {"this": HERE}
    if args.compare:
        checkouts["other"] = Path(args.compare).resolve()
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in checkouts}
    for number in range(args.rounds):
        order = list(checkouts) if number % 2 == 0 else list(reversed(checkouts))
        for label in order:
            name = f"{args.keep_world}_copy"
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            _admin(f'CREATE DATABASE "{name}" TEMPLATE "{args.keep_world}"')
            out = Path("/tmp") / f"{name}.{label}.json"
            command = [sys.executable, str(Path(__file__).resolve())]
            command += ["--keep-world", args.keep_world, "--child", f"{PG_SERVER}/{name}", str(out)]
            if args.profile:
                command += ["--profile", f"{args.profile}.{label}"]
            subprocess.run(command, cwd=checkouts[label], check=True)
            result = json.loads(out.read_text())
            results[label].append(result)
            print(
                f"  round {number + 1} {label:<5}: {result['per_decline_ms']:.2f} ms a decline "
                f"(drains {', '.join(f'{c * 1000:.0f}' for c in result['cpu'])} ms, taken "
                f"{result['taken']}), idle poll {result['idle_ms']:.2f} ms, "
                f"digest {result['digest']}",
                flush=True,
            )
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    medians = {k: statistics.median(r["per_decline_ms"] for r in v) for k, v in results.items()}
    for label, median in medians.items():
        idle = statistics.median(r["idle_ms"] for r in results[label])
        digests = sorted({r["digest"] for r in results[label]})
        print(f"{label:<5} median {median:.2f} ms a decline, idle {idle:.2f} ms, {digests}")
    if args.compare:
        print(f"this ÷ other {medians['this'] / medians['other']:.3f}")


if __name__ == "__main__":
    main()
