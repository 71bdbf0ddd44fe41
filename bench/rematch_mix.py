"""CPU of the worker's re-match drain: batches of declines of mixed categories against batches
of one category (issue 7.6, "a decline's re-match").

Seeds a fresh database, offers triaged requests by hand to a skilled provider, warms the
process as a worker warms itself at start (the engine's memo of analyzed provider texts and
the busiest categories' text models, ``warm_text_memo``), drains one batch unmeasured (the
process's first statements), then, round after round, declines a batch (each decline its own
transaction, as the API does) and times the drain that re-matches it (``rematch_queue.drain``,
as ``Worker.rematch_declined`` runs it): CPU seconds of this process, wall seconds and SQL
statements. A mixed round takes its requests from a few categories (a different few each
round, as the declines of a poll come), a single round from one.

With ``--stream N``, then N polls of the worker's own loop call (``Worker.rematch_declined``,
one a second, as ``zhuqi worker`` polls) while ``--per-poll`` declines of random categories
arrive before each: the load bench's trickle of declines, without its HTTP load. It reports
the worker's CPU per declined request and the requests per drain under ``--gather`` seconds
(``ZHUQI_REMATCH_GATHER_SECONDS``; 0: a drain on every poll that finds marks).

Usage::

    .venv/bin/python bench/rematch_mix.py --database postgresql --enterprises 10k --providers 10k
    .venv/bin/python bench/rematch_mix.py --database sqlite --enterprises 2k --providers 1k  # quick
    .venv/bin/python bench/rematch_mix.py --database postgresql --enterprises 2k --providers 2k \
        --rounds 1 --stream 40 --gather 0,5          # the worker's poll under a trickle
"""

from __future__ import annotations

import argparse
import cProfile
import random
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch import count, scratch_database

from app.assignments import rematch_queue
from app.assignments import service as assignment_service
from app.assignments.schemas import Decline
from app.assignments.warmup import warm_text_memo
from app.common.principal import Principal
from app.db import make_engine, make_session_factory
from app.match_runs.claims import Sessions
from app.models import (
    Assignment,
    AssignmentOrigin,
    AssignmentStatus,
    HelpRequest,
    Provider,
    RequestStatus,
    Role,
    User,
    Vetting,
)
from app.settings import Settings
from app.supervision import batches
from app.worker.loop import Worker

ROOT = Path(__file__).resolve().parents[1]
WARMUP_PROVIDERS = Settings.model_fields["text_warmup_providers"].default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="sqlite")
    parser.add_argument("--enterprises", type=count, default=count("10k"))
    parser.add_argument("--providers", type=count, default=count("10k"))
    parser.add_argument("--batch", type=int, default=24, help="declines per round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of each kind")
    parser.add_argument("--mix", type=int, default=4, help="categories of a mixed round")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stream", type=int, default=0, help="worker polls of the trickle")
    parser.add_argument("--per-poll", type=int, default=2, help="declines before each poll")
    parser.add_argument(
        "--gather",
        default=str(Settings.model_fields["rematch_gather_seconds"].default),
        help="the worker's gather window(s), seconds, e.g. 0,5 (a trickle each)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="write cProfile stats of the measured drains (not the first) to this file",
    )
    return parser


class Statements:
    """SQL statements the engine ran while counting, and those SQLAlchemy had to compile (a
    compiled-cache miss: a statement whose shape differs from every one seen before)."""

    def __init__(self, engine: Engine) -> None:
        self.seen = 0
        self.compiled = 0
        self.compiled_texts: list[str] = []
        event.listen(engine, "before_cursor_execute", self._one)

    def _one(
        self, _conn: Any, _cursor: Any, statement: str, _p: Any, context: Any, _m: Any
    ) -> None:
        self.seen += 1
        if context is not None and "generated" in context._get_cache_stats():
            self.compiled += 1
            self.compiled_texts.append(" ".join(statement.split())[:160])


def _pools(session: Session) -> dict[str, list[int]]:
    """Triaged requests never assigned, by category (plain ones: no team, no extra
    categories, so that each round's mix is exactly the categories it names)."""
    assigned = select(Assignment.request_id)
    rows = session.execute(
        select(HelpRequest.id, HelpRequest.category)
        .where(
            HelpRequest.status == RequestStatus.TRIAGED,
            HelpRequest.providers_wanted == 1,
            HelpRequest.id.not_in(assigned),
        )
        .order_by(HelpRequest.id)
    ).all()
    extras: dict[int, Any] = dict(
        session.execute(select(HelpRequest.id, HelpRequest.extra_categories)).all()
    )
    pools: dict[str, list[int]] = defaultdict(list)
    for request_id, category in rows:
        if not extras.get(request_id):
            pools[category].append(request_id)
    return pools


def _rounds(
    pools: dict[str, list[int]], args: argparse.Namespace, rng: random.Random
) -> list[tuple[str, list[int]]]:
    """(kind, request ids) of the unmeasured first round and then mixed and single rounds
    in turn; each mixed round names a different set of categories."""
    busy = sorted((c for c in pools if len(pools[c]) >= 3 * args.batch), key=lambda c: c)
    taken: dict[str, int] = defaultdict(int)

    def take(category: str, n: int) -> list[int]:
        start = taken[category]
        taken[category] += n
        return pools[category][start : start + n]

    plan: list[tuple[str, list[int]]] = []
    mixes: set[tuple[str, ...]] = set()
    for number in range(args.rounds + 1):
        while (mix := tuple(sorted(rng.sample(busy, args.mix)))) in mixes:
            pass
        mixes.add(mix)
        ids = [r for i in range(args.batch) for r in take(mix[i % len(mix)], 1)]
        plan.append(("first" if number == 0 else "mixed", ids))
        if number:
            plan.append(("single", take(busy[number % len(busy)], args.batch)))
    return plan


def _offer_by_hand(session: Session, request_ids: list[int]) -> dict[int, int]:
    """An offer to each request from a vetted provider skilled in its category (the first
    with room); returns request → offer id."""
    categories = dict(
        session.execute(
            select(HelpRequest.id, HelpRequest.category).where(HelpRequest.id.in_(request_ids))
        ).all()
    )
    load: dict[int, int] = defaultdict(int)
    for provider_id, n in session.execute(
        select(Assignment.provider_id, func.count())
        .where(Assignment.status.in_(("offered", "accepted", "active")))
        .group_by(Assignment.provider_id)
    ):
        load[provider_id] = n
    providers = session.execute(
        select(Provider.id, Provider.skills, Provider.capacity)
        .where(Provider.vetting == Vetting.APPROVED, Provider.active.is_(True))
        .order_by(Provider.id)
    ).all()
    rows = []
    for request_id in request_ids:
        category = categories[request_id]
        for provider_id, skills, capacity in providers:
            if category in (skills or {}) and load[provider_id] < capacity:
                load[provider_id] += 1
                rows.append(
                    {
                        "request_id": request_id,
                        "provider_id": provider_id,
                        "origin": AssignmentOrigin.MANUAL,
                        "status": AssignmentStatus.OFFERED,
                        "score": 0.5,
                        "breakdown": {},
                    }
                )
                break
    made = session.execute(insert(Assignment).returning(Assignment.id, Assignment.request_id), rows)
    offers = {request_id: offer_id for offer_id, request_id in made}
    session.execute(
        update(HelpRequest)
        .where(HelpRequest.id.in_(list(offers)))
        .values(status=RequestStatus.MATCHED)
        .execution_options(synchronize_session=False)
    )
    return offers


def _decline_all(factory: sessionmaker[Session], offers: list[int]) -> None:
    with factory() as session:
        someone = session.scalar(select(User.id).order_by(User.id).limit(1)) or 0
    for offer_id in offers:
        with factory() as session, session.begin():
            offer = session.get_one(Assignment, offer_id)
            principal = Principal(
                user_id=someone, email="bench", role=Role.EXPERT, provider_id=offer.provider_id
            )
            assignment_service.decline(
                session,
                principal=principal,
                assignment=offer,
                data=Decline(reason_code="no_capacity"),
            )


@contextmanager
def _measured(
    out: dict[str, float], statements: Statements, profile: cProfile.Profile | None = None
) -> Iterator[None]:
    cpu, wall, seen = time.process_time(), time.perf_counter(), statements.seen
    compiled = statements.compiled
    if profile is not None:
        profile.enable()
    yield
    if profile is not None:
        profile.disable()
    out["cpu"] = time.process_time() - cpu
    out["wall"] = time.perf_counter() - wall
    out["statements"] = statements.seen - seen
    out["compiled"] = statements.compiled - compiled


def _trickles(
    pools: dict[str, list[int]], args: argparse.Namespace, rng: random.Random
) -> list[list[list[int]]]:
    """For each gather window, the declines before each poll: ``per_poll`` requests of
    random categories (weighted by how many each has), none used by the rounds."""
    used = args.batch * (2 * args.rounds + 1)  # at most, per category, by ``_rounds``
    left = {c: ids[used:] for c, ids in pools.items()}
    trickles = []
    for _ in _windows(args):
        polls = []
        for _ in range(args.stream):
            weights = [len(v) for v in left.values()]
            categories = rng.choices(list(left), weights=weights, k=args.per_poll)
            polls.append([left[c].pop() for c in categories if left[c]])
        trickles.append(polls)
    return trickles


def _windows(args: argparse.Namespace) -> list[float]:
    return [float(g) for g in str(args.gather).split(",")] if args.stream else []


def stream(
    factory: sessionmaker[Session],
    read: sessionmaker[Session],
    gather: float,
    polls: list[dict[int, int]],
) -> dict[str, float]:
    """The worker's poll, once a second, with each poll's declines made just before it;
    CPU of this process in the worker's calls only, and the requests each drain took."""
    worker = Worker(
        Sessions(write=factory, read=read),
        worker_id="bench",
        sweep_every=None,
        rematch_gather=timedelta(seconds=gather),
    )
    out = {"cpu": 0.0, "drains": 0.0, "taken": 0.0, "declined": 0.0}

    def poll() -> None:
        before = time.process_time()
        taken = worker.rematch_declined()
        out["cpu"] += time.process_time() - before
        out["drains"] += taken > 0
        out["taken"] += taken

    for offers in polls:
        started = time.monotonic()
        _decline_all(factory, list(offers.values()))
        out["declined"] += len(offers)
        poll()
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    while True:  # the last window's declines
        with read() as session:
            if not rematch_queue.pending(session):
                return out
        time.sleep(1.0)
        poll()


def run(url: str, args: argparse.Namespace) -> list[tuple[str, dict[str, float]]]:
    engine = make_engine(url)
    statements = Statements(engine)
    factory = make_session_factory(engine)
    read = make_session_factory(engine, read_only=True)
    with factory() as session, session.begin():
        pools = _pools(session)
        rounds = _rounds(pools, args, random.Random(args.seed))
        offers = [_offer_by_hand(session, ids) for _, ids in rounds]
        trickles = [
            [_offer_by_hand(session, ids) if ids else {} for ids in polls]
            for polls in _trickles(pools, args, random.Random(args.seed + 1))
        ]
    warm_text_memo(read, limit=WARMUP_PROVIDERS)
    results: list[tuple[str, dict[str, float]]] = []
    profile = cProfile.Profile() if args.profile else None
    for (kind, _), offered in zip(rounds, offers, strict=True):
        _decline_all(factory, list(offered.values()))
        out: dict[str, float] = {}
        with _measured(out, statements, profile if kind != "first" else None):
            taken = rematch_queue.drain(batches.begin_each(factory), batches.begin_each(factory))
        out["taken"] = taken
        results.append((kind, out))
        print(
            f"  {kind:<7} {len(offered):3d} declines: cpu {out['cpu']:6.3f} s, "
            f"wall {out['wall']:6.3f} s, {out['statements']:4.0f} statements "
            f"({out['compiled']:.0f} compiled), taken {taken}",
            flush=True,
        )
    for gather, polls in zip(_windows(args), trickles, strict=True):
        out = stream(factory, read, gather, polls)
        results.append((f"stream {gather:g}", out))
        print(
            f"  stream, gather {gather:g} s: {out['declined']:.0f} declines, "
            f"{out['drains']:.0f} drains ({out['taken'] / max(out['drains'], 1):.1f} a drain), "
            f"worker cpu {out['cpu']:.3f} s, "
            f"{out['cpu'] / max(out['taken'], 1) * 1000:.1f} ms per declined request",
            flush=True,
        )
    if profile is not None:
        profile.dump_stats(args.profile)  # read with python -m pstats, or snakeviz
        print("  statements compiled (cache misses), every round:", flush=True)
        for text_of, times in Counter(statements.compiled_texts).most_common():
            print(f"    {times:3d} × {text_of}", flush=True)
    engine.dispose()
    return results


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    print(
        f"re-match drain: {args.database}, {args.enterprises} enterprises, "
        f"{args.providers} providers, {args.batch} declines a round, {args.mix} categories mixed"
    )
    with scratch_database(args.database, "rematchmix") as url:
        command = [sys.executable, "-m", "seed", "--database-url", url]
        command += ["--enterprises", str(args.enterprises), "--providers", str(args.providers)]
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        results = run(url, args)
    for kind in ("mixed", "single"):
        cpu = [out["cpu"] for k, out in results if k == kind]
        per = [out["cpu"] / max(out["taken"], 1) * 1000 for k, out in results if k == kind]
        print(
            f"{kind:<7} drain cpu median {statistics.median(cpu):.3f} s "
            f"(min {min(cpu):.3f}, max {max(cpu):.3f}); "
            f"{statistics.median(per):.1f} ms cpu per declined request"
        )


if __name__ == "__main__":
    main()
