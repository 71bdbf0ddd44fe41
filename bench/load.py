"""Load benchmark: the service under a realistic mix, against a bare FastAPI peer.

For each database (SQLite file, PostgreSQL on 127.0.0.1), this script

1. builds a fresh database, migrates it and seeds the demo data (10k enterprises × 10k
   providers by default), then prepares what the mix needs: offers to accept and decline
   (one match run over every region, published), provider and enterprise users;
2. starts ``zhuqi`` with uvicorn (``--workers P``) and drives it from this process with
   ``C`` concurrent loopback clients: filtered lists, single objects, creates, offers accepted
   and declined (each decline marks its request; a ``zhuqi worker`` process beside the server
   re-matches marked requests in batches, and its CPU counts in the server's), ``/stats`` and
   ``/supervision``. Every level is bounded by a request budget *and* a hard deadline;
3. starts the peer, ``bench/bare_app.py`` (one indexed query per request, nothing of ours),
   under the same server, processes and clients, and measures it the same way;
4. prints throughput, p50/p95/p99 per endpoint, errors, and zhuqi ÷ peer; afterwards checks
   that every acknowledged write is in the database and every declined request was re-matched
   (offered again, or recorded unmatched). Beside each it prints the CPU the load
   driver itself used and the servers used (share of one core): on a 2-core machine the
   driver competes with the servers it measures;
5. with ``--think T``, an extra, clearly labelled mode after the closed-loop one: the same
   clients as *users* who wait an exponentially distributed think time (mean ``T`` s) before
   each request, so the offered rate is about ``clients / T`` requests/s instead of "as fast
   as the server answers". It never replaces the closed-loop (saturation) figures.

The driver is ``bench/lean_http.py`` (a minimal keep-alive HTTP/1.1 client; ``--driver httpx``
for httpx's async client, which cost about 3 ms of CPU per request here, more than the bare
peer's server did, so the driver set the peer's ceiling).

``--pin`` runs the servers under ``taskset`` on cores ``0..P-1`` (1 process: one core; 2: two
cores), so one process cannot spread over both cores; the driver and PostgreSQL stay unpinned.

Targets (issue 7): zhuqi >= 0.5 × the peer's throughput, p99 < 1 s at 200 clients, 0 errors,
every acknowledged write present; throughput grows with processes on PostgreSQL.

Usage::

    .venv/bin/python bench/load.py                                   # both databases, 50/200/400
    .venv/bin/python bench/load.py --databases sqlite --clients 200 --requests 2000
    .venv/bin/python bench/load.py --databases postgresql --processes 1,2 --clients 200
    .venv/bin/python bench/load.py --databases postgresql --clients 200 --think 2   # + users
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import Engine, create_engine, func, select, text, union
from sqlalchemy.orm import Session

from app.assignments.unmatched import REMATCH
from app.bundling import preparation
from app.common.bulk import our_tables, refresh_planner_statistics
from app.common.credentials import create_access_token, hash_secret
from app.common.principal import Principal
from app.db import make_engine, make_session_factory
from app.match_runs import publishing, runner
from app.match_runs import service as match_run_service
from app.match_runs.schemas import MatchRunCreate
from app.migrate import upgrade
from app.models import (
    Assignment,
    AssignmentOrigin,
    AssignmentStatus,
    Enterprise,
    HelpRequest,
    MatchRun,
    Provider,
    Role,
    UnmatchedReason,
    User,
)
from app.supervision import batches
from seed.load import DEMO_ADMIN, load_demo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lean_http import LeanClient, LeanError, LeanResponse
from scratch import PG_SERVER, scratch_database

Client = httpx.AsyncClient | LeanClient
Reply = httpx.Response | LeanResponse
# What a failed exchange raises, whichever client made it.
TRANSPORT_ERRORS = (httpx.HTTPError, LeanError, OSError, TimeoutError)

ROOT = Path(__file__).resolve().parents[1]

SECRET = "bench-secret-key-that-is-long-enough-0123456789"
REGION = "35"
# (label, weight): a coordinator's and an enterprise's day, with providers answering offers.
MIX = [
    ("requests.list", 20),
    ("requests.get", 12),
    ("enterprises.list", 8),
    ("enterprises.get", 8),
    ("providers.list", 8),
    ("assignments.list", 6),
    ("users.me", 10),
    ("requests.create", 10),
    ("offers.accept", 6),
    ("offers.decline", 3),
    ("stats", 3),
    ("supervision", 2),
]
CATEGORIES = ["financing", "cost_reduction", "orders_market", "digital_transformation"]


@dataclass
class World:
    """Ids and tokens the mix draws on; offers are consumed once each."""

    database_url: str
    coordinator: dict[str, str]
    enterprises: list[tuple[int, dict[str, str]]]
    request_ids: list[int]
    enterprise_ids: list[int]
    offers: list[tuple[int, dict[str, str]]]
    size: int = 0  # enterprises and providers seeded


@dataclass
class Result:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    created: list[int] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)
    declined: list[int] = field(default_factory=list)
    seconds: float = 0.0
    driver_cpu: float = 0.0  # CPU seconds this process spent driving the level
    server_cpu: float = 0.0  # CPU seconds of the server's processes during the level
    worker_cpu: float = 0.0  # of which the re-match worker's (part of ``server_cpu``)
    worker_drains: int = 0  # the worker's drains that re-matched any of them
    loop_cpu: float = 0.0  # of which the server processes' main threads (the event loops)

    @property
    def done(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + sum(self.errors.values())


# ---------------------------------------------------------------- database and world


def _token(user: User) -> dict[str, str]:
    token, _ = create_access_token(
        user.id, token_version=user.token_version or 0, secret_key=SECRET, minutes=600
    )
    return {"Authorization": f"Bearer {token}"}


def build_world(url: str, *, size: int, offers: int) -> World:
    upgrade(url=url)
    engine = make_engine(url)
    started = time.perf_counter()
    with Session(engine) as session, session.begin():
        load_demo(session, enterprises=size, providers=size)
    print(f"  seeded {size} × {size} in {time.perf_counter() - started:.1f} s", flush=True)
    refresh_planner_statistics(engine)  # the match run reads what was just loaded
    with Session(engine, expire_on_commit=False) as session:  # commits as it goes
        world = _prepare(session, url, offers=offers)
        session.commit()
    refresh_planner_statistics(engine)  # as ``zhuqi seed`` does after its bulk load
    world.size = size
    engine.dispose()
    return world


def upkeep(url: str) -> None:
    """What autovacuum does between two levels, done by hand where the server has it off.

    This machine's PostgreSQL runs with ``autovacuum = off`` (its CI configuration,
    ``conf.d/90-ci.conf``), which no deployment does. The world was built without a single
    ``ANALYZE`` (``pg_stats`` was empty: the planner guessed every table's size) and each
    level's updates stayed as dead rows for the next level on a kept world. Autovacuum would
    have analysed the seeded tables within its one-minute nap, and vacuumed after a level
    (which leaves more dead rows than its 50 + 20 % threshold), so the bench does the same
    before each server starts."""
    if not url.startswith("postgresql"):
        return
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        if connection.execute(text("SHOW autovacuum")).scalar_one() == "off":
            names = ", ".join(f'"{name}"' for name in our_tables(connection))
            connection.execute(text(f"VACUUM (ANALYZE) {names}"))
    engine.dispose()


@contextmanager
def world_database(kind: str, keep: str | None, label: str) -> Iterator[str]:
    """A scratch database of ``kind``, or with ``keep`` the PostgreSQL database of that name,
    which outlives the bench so that :func:`obtain_world` need not build its world again."""
    if keep is None:
        with scratch_database(kind, label) as url:
            yield url
        return
    if kind != "postgresql":
        sys.exit("a kept world is a PostgreSQL database")
    yield f"{PG_SERVER}/{keep}"


def _kept_world_file(keep: str) -> Path:
    return Path(tempfile.gettempdir()) / f"{keep}.world.pkl"


def obtain_world(url: str, keep: str | None, *, size: int, offers: int) -> World:
    """``build_world``, or with ``keep`` the world kept in that database by an earlier run,
    if it has the size and the unused offers asked for (building one takes minutes: the
    offers are made through the product's own use case). Save it again with
    :func:`keep_world` when the run is over: accepts and declines use its offers up."""
    if keep is None:
        return build_world(url, size=size, offers=offers)
    saved = _kept_world_file(keep)
    if saved.exists():
        world = World(**pickle.loads(saved.read_bytes()))
        if world.size == size and len(world.offers) >= offers:
            print(f"  reusing the world kept in {keep} ({len(world.offers)} offers)", flush=True)
            return world
    admin = create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{keep}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{keep}"'))
    admin.dispose()
    world = build_world(url, size=size, offers=offers)
    keep_world(world, keep)
    return world


def keep_world(world: World, keep: str | None) -> None:
    """Save a kept world with the offers it has left (no-op without ``keep``)."""
    if keep is not None:  # plain data: this module is ``__main__`` or ``load`` by who runs it
        _kept_world_file(keep).write_bytes(pickle.dumps(asdict(world)))


def _prepare(session: Session, url: str, *, offers: int) -> World:
    admin = session.scalars(select(User).where(User.email == DEMO_ADMIN)).one()
    coordinator = session.scalars(
        select(User).where(User.role == Role.COORDINATOR).order_by(User.id)
    ).first()
    if coordinator is None or coordinator.region_prefixes != [REGION]:
        raise RuntimeError(f"the demo's first coordinator should cover region {REGION}")
    in_region = (
        select(HelpRequest.id, HelpRequest.enterprise_id)
        .join(Enterprise)
        .where(Enterprise.region_code.startswith(REGION))
    )
    rows = session.execute(in_region.order_by(HelpRequest.id)).all()
    enterprise_ids = sorted({e for _, e in rows})
    password = hash_secret("bench-password-0123")
    ent_users = [
        User(
            email=f"ent{e}@bench.cn",
            password_hash=password,
            full_name=f"企业{e}",
            role=Role.ENTERPRISE,
            enterprise_id=e,
            region_prefixes=[],
        )
        for e in enterprise_ids[:300]
    ]
    session.add_all(ent_users)
    made = _make_offers(session, Principal.of(admin), offers, password)
    session.flush()
    return World(
        database_url=url,
        coordinator=_token(coordinator),
        enterprises=[(u.enterprise_id or 0, _token(u)) for u in ent_users],
        request_ids=[r for r, _ in rows],
        enterprise_ids=enterprise_ids,
        offers=made,
    )


def _make_offers(
    session: Session, admin: Principal, wanted: int, password: str
) -> list[tuple[int, dict[str, str]]]:
    """Offers as a deployment makes them: one match run over every region, published (its
    plans prepared here, so the worker beside the server starts with nothing owed), each
    offer with a user of its provider. Set-based, so a 10k world takes seconds, where
    offering by hand one request at a time took over 20 minutes at 5k."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    started = time.perf_counter()
    run_id = match_run_service.create(session, principal=admin, data=MatchRunCreate()).id
    session.commit()
    processed = runner.process_next(engine, "bench-load", run_id=run_id)
    assert processed is not None, "the run was not claimable"
    assert processed.outcome == "succeeded", processed
    run = session.get_one(MatchRun, run_id, populate_existing=True)
    publishing.publish(session, principal=admin, run=run)
    session.commit()
    preparation.prepare_pending(batches.begin_each(make_session_factory(engine)))
    offers = session.execute(
        select(Assignment.id, Assignment.provider_id)
        .where(Assignment.match_run_id == run_id, Assignment.status == AssignmentStatus.OFFERED)
        .order_by(Assignment.id)
        .limit(wanted)
    ).all()
    providers = session.scalars(
        select(Provider).where(Provider.id.in_({p for _, p in offers})).order_by(Provider.id)
    ).all()
    users = {
        p.id: User(
            email=f"p{p.id}@bench.cn",
            password_hash=password,
            full_name=p.name,
            role=Role(p.kind.value),
            provider_id=p.id,
            region_prefixes=[],
        )
        for p in providers
    }
    session.add_all(users.values())
    session.flush()
    tokens = {provider_id: _token(user) for provider_id, user in users.items()}
    made = [(offer_id, tokens[provider_id]) for offer_id, provider_id in offers]
    print(
        f"  {len(made)} offers to {len(users)} providers from match run {run_id}, published, "
        f"in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    if len(made) < wanted:
        print(
            f"  only {len(made)} of the {wanted} offers wanted: once they run out, accepts and "
            "declines become reads of /users/me, so later levels or rounds carry fewer writes "
            "(a larger --size has more triaged requests to offer)",
            flush=True,
        )
    return made


# ---------------------------------------------------------------- servers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Served:
    base: str
    pid: int
    worker_pid: int | None = None  # zhuqi's ``zhuqi worker`` (re-matches declines)
    url: str = ""
    log_path: str = ""  # where the server and its worker log

    def drains(self) -> int:
        """The worker's drains so far that re-matched any request (one log line each, which
        also gives the drain's wall and CPU seconds).

        A drain's cost is mostly fixed (the snapshot, an engine run per category set, its
        writes): 0.10 s of CPU for 13 requests and 0.16 s for 123 in one PostgreSQL run. Two
        or three fall in a level, so the worker's CPU a decline depends on how many drains a
        level gets as much as on their size."""
        if not self.log_path:
            return 0
        with open(self.log_path, encoding="utf-8", errors="replace") as lines:
            return sum(1 for line in lines if "re-matched" in line and '"event": "worker ' in line)

    def cpu_seconds(self) -> float:
        """The server's CPU and its worker's: the re-match a decline leaves is part of its cost."""
        return tree_cpu_seconds(self.pid) + self.worker_cpu_seconds()

    def worker_cpu_seconds(self) -> float:
        """The re-match worker's CPU alone (0 for the peer, which has none)."""
        return tree_cpu_seconds(self.worker_pid) if self.worker_pid is not None else 0.0


def main_thread_cpu_seconds(pid: int) -> float:
    """CPU seconds of the main threads of a process and its live descendants: for a uvicorn
    server, its event loops (HTTP, middleware, routing, dependencies, serialisation), apart
    from the worker threads that run endpoints and talk to the database."""
    return tree_cpu_seconds(pid, main_threads_only=True)


def tree_cpu_seconds(pid: int, *, main_threads_only: bool = False) -> float:
    """CPU seconds (user + system) of a process and every live descendant (uvicorn's workers),
    from /proc, all their threads or only each one's main thread; 0 where there is no /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        stat = (
            f"/proc/{current}/task/{current}/stat" if main_threads_only else f"/proc/{current}/stat"
        )
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


def settle(served: Served, *, idle: float = 0.05, most: float = 60.0) -> None:
    """Wait (at most ``most`` s) until the server and its worker use under ``idle`` of a core:
    their start-up warm-ups (provider texts, text models: seconds at 2k) would otherwise be
    counted against the first level or label measured."""
    deadline = time.monotonic() + most
    while time.monotonic() < deadline:
        before = served.cpu_seconds()
        time.sleep(0.5)
        if served.cpu_seconds() - before < idle * 0.5:
            return


@contextmanager
def server(target: str, url: str, processes: int, *, pin: bool = False) -> Iterator[Served]:
    port = _free_port()
    env = os.environ | {
        "DATABASE_URL": url,
        "ZHUQI_SECRET_KEY": SECRET,
        "ZHUQI_ENVIRONMENT": "test",
        "ZHUQI_EMBEDDED_WORKER": "false",
        "PYTHONPATH": str(ROOT),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(processes),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-keep-alive",
        "30",
    ]
    cores = ",".join(str(i % (os.cpu_count() or 1)) for i in range(processes))
    if pin:
        command = ["taskset", "-c", cores, *command]
    # The servers' logs (one access line per request: a cost production pays too) go to a
    # file, not to this report.
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed with the server below
        "w", prefix="zhuqi-load-server-", suffix=".log", delete=False
    )
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    worker = None
    if "app.main" in target:  # one worker beside the server, on the server's cores
        run_worker = [sys.executable, "-c", "from app.cli import main; main()", "worker"]
        if pin:
            run_worker = ["taskset", "-c", cores, *run_worker]
        worker = subprocess.Popen(
            run_worker, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if (
                httpx.get(
                    f"{base}/healthz" if "app.main" in target else f"{base}/items/1", timeout=1
                ).status_code
                == 200
            ):
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            if worker is not None:
                worker.kill()
            raise RuntimeError(f"{target} did not start; its log: {log.name}")
        time.sleep(0.2)
    served = Served(
        base, process.pid, worker.pid if worker is not None else None, url, log_path=log.name
    )
    settle(served)
    try:
        yield served
    finally:
        for running in [process] + ([worker] if worker is not None else []):
            running.send_signal(signal.SIGTERM)
            try:
                running.wait(timeout=20)
            except subprocess.TimeoutExpired:
                running.kill()
        log.close()
        if os.environ.get("ZHUQI_BENCH_KEEP_LOGS"):
            print(f"  server and worker log kept: {log.name}", flush=True)
        else:
            os.unlink(log.name)


# ---------------------------------------------------------------- the drivers


async def _zhuqi_call(
    client: Client, world: World, label: str, rng: random.Random, result: Result
) -> Reply:
    coord = world.coordinator
    params: dict[str, str | int]
    if label == "requests.list":
        params = {"limit": 20, "category": rng.choice(CATEGORIES)}
        return await client.get("/api/v1/requests", params=params, headers=coord)
    if label == "requests.get":
        return await client.get(f"/api/v1/requests/{rng.choice(world.request_ids)}", headers=coord)
    if label == "enterprises.list":
        return await client.get(
            "/api/v1/enterprises", params={"limit": 20, "region": "3505"}, headers=coord
        )
    if label == "enterprises.get":
        eid = rng.choice(world.enterprise_ids)
        return await client.get(f"/api/v1/enterprises/{eid}", headers=coord)
    if label == "providers.list":
        params = {"limit": 20, "category": rng.choice(CATEGORIES)}
        return await client.get("/api/v1/providers", params=params, headers=coord)
    if label == "assignments.list":
        return await client.get("/api/v1/assignments", params={"limit": 20}, headers=coord)
    if label == "users.me":
        return await client.get("/api/v1/users/me", headers=rng.choice(world.enterprises)[1])
    if label == "requests.create":
        _, headers = rng.choice(world.enterprises)
        body = {
            "category": rng.choice(CATEGORIES),
            "title": "原材料涨价，回款慢，需要周转资金",
            "description": "load bench",
            "urgency": rng.randint(1, 5),
        }
        return await client.post("/api/v1/requests", json=body, headers=headers)
    if label in ("offers.accept", "offers.decline"):
        if not world.offers:
            return await client.get("/api/v1/users/me", headers=coord)
        offer_id, headers = world.offers.pop()
        if label == "offers.accept":
            return await client.post(f"/api/v1/assignments/{offer_id}/accept", headers=headers)
        return await client.post(
            f"/api/v1/assignments/{offer_id}/decline",
            headers=headers,
            json={"reason_code": "no_capacity", "reason": "bench"},
        )
    if label == "stats":
        return await client.get("/api/v1/stats", headers=coord)
    if label == "supervision":
        return await client.get("/api/v1/supervision", params={"limit": 50}, headers=coord)
    raise ValueError(label)


def _record(result: Result, label: str, response: Reply, seconds: float) -> None:
    path = response.path if isinstance(response, LeanResponse) else response.request.url.path
    if label in ("offers.accept", "offers.decline") and "assignments" not in path:
        # the prepared offers ran out: the call was a /users/me read, and is counted as one,
        # so a level's per-endpoint table shows that its mix was lighter than the others'
        label = "users.me (offers ran out)"
    if response.status_code >= 400:
        result.errors[f"{label} {response.status_code}"] += 1
        return
    result.latencies[label].append(seconds)
    if label == "requests.create":
        result.created.append(int(response.json()["id"]))
    elif label in ("offers.accept", "offers.decline") and "assignments" in path:
        (result.accepted if label == "offers.accept" else result.declined).append(
            int(path.split("/")[-2])
        )


async def drive(
    base: str,
    clients: int,
    budget: int,
    deadline: float,
    world: World | None,
    seed: int,
    think: float = 0.0,
    lean: bool = True,
    rows: int = 10_000,
) -> Result:
    """``clients`` loops share one request budget; all stop at the deadline.

    The peer (``world`` None) reads enterprises 1..``rows``: the seeded ones, so each of its
    queries finds, decodes and serialises a row as ours do (ids past the seed found nothing:
    at ``--size 2000`` four queries in five returned an empty body).

    ``think`` > 0: each loop is a user who waits an exponential think time (mean ``think``
    seconds) before each request; latency is still timed from the request's send."""
    result = Result()
    labels = [label for label, _ in MIX]
    weights = [w for _, w in MIX]
    remaining = [budget]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as pooled:
        client: Client = LeanClient(base) if lean else pooled
        started = time.perf_counter()
        stop_at = started + deadline

        async def one_client(index: int) -> None:
            rng = random.Random(seed * 1000 + index)
            while remaining[0] > 0 and time.perf_counter() < stop_at:
                if think > 0:  # never past the deadline: the level's seconds stay its own
                    pause = rng.expovariate(1 / think)
                    await asyncio.sleep(min(pause, max(0.0, stop_at - time.perf_counter())))
                    if remaining[0] <= 0 or time.perf_counter() >= stop_at:
                        break
                remaining[0] -= 1
                label = rng.choices(labels, weights)[0] if world else "bare.get"
                t0 = time.perf_counter()
                try:
                    if world is None:
                        response = await client.get(f"/items/{rng.randint(1, rows)}")
                    else:
                        response = await _zhuqi_call(client, world, label, rng, result)
                except TRANSPORT_ERRORS as exc:
                    result.errors[f"{label} {type(exc).__name__}"] += 1
                    continue
                _record(result, label, response, time.perf_counter() - t0)

        cpu_before = time.process_time()
        await asyncio.wait_for(
            asyncio.gather(*(one_client(i) for i in range(clients))), timeout=deadline + 60
        )
        result.seconds = time.perf_counter() - started
        result.driver_cpu = time.process_time() - cpu_before
        if isinstance(client, LeanClient):
            await client.aclose()
    return result


def measure(
    served: Served,
    clients: int,
    args: argparse.Namespace,
    world: World | None,
    think: float = 0.0,
) -> Result:
    """One level against a running server, with the server's CPU over the same interval (and
    its worker's, until the re-matches the level's declines left are done)."""
    before, worker_before = served.cpu_seconds(), served.worker_cpu_seconds()
    drains_before = served.drains()
    loop_before = main_thread_cpu_seconds(served.pid)
    result = asyncio.run(
        drive(
            served.base,
            clients,
            args.requests,
            args.deadline,
            world,
            clients,
            think,
            lean=args.driver == "lean",
            rows=args.size,
        )
    )
    if served.worker_pid is not None:
        _wait_for_rematches(served.url, timeout=60)
    result.server_cpu = served.cpu_seconds() - before
    result.loop_cpu = main_thread_cpu_seconds(served.pid) - loop_before
    result.worker_cpu = served.worker_cpu_seconds() - worker_before
    result.worker_drains = served.drains() - drains_before
    return result


def _wait_for_rematches(url: str, *, timeout: float) -> None:
    """Until the worker has re-matched every declined request (bounded: a stuck worker shows
    as re-matches missing in the writes check, not as a hang)."""
    engine = make_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with Session(engine) as session:
                marked = HelpRequest.rematch_requested_at.is_not(None)
                if not session.scalar(select(func.count()).select_from(HelpRequest).where(marked)):
                    return
            time.sleep(0.2)
    finally:
        engine.dispose()


# ---------------------------------------------------------------- checks and report


def check_writes(url: str, result: Result) -> str:
    engine = make_engine(url)
    with Session(engine) as session:
        created = (
            session.scalar(
                select(func.count())
                .select_from(HelpRequest)
                .where(HelpRequest.id.in_(result.created))
            )
            if result.created
            else 0
        )
        accepted = (
            session.scalar(
                select(func.count())
                .select_from(Assignment)
                .where(
                    Assignment.id.in_(result.accepted),
                    Assignment.status.in_((AssignmentStatus.ACCEPTED, AssignmentStatus.ACTIVE)),
                )
            )
            if result.accepted
            else 0
        )
        declined = (
            session.scalar(
                select(func.count())
                .select_from(Assignment)
                .where(
                    Assignment.id.in_(result.declined),
                    Assignment.status == AssignmentStatus.DECLINED,
                )
            )
            if result.declined
            else 0
        )
        rematched, of = _rematched(session, result.declined)
    engine.dispose()
    ok = (created, accepted, declined, rematched) == (
        len(result.created),
        len(result.accepted),
        len(result.declined),
        of,
    )
    return (
        f"writes {'all present' if ok else 'MISSING'}: created {created}/{len(result.created)}, "
        f"accepted {accepted}/{len(result.accepted)}, declined {declined}/{len(result.declined)}, "
        f"declined requests re-matched (offered again or recorded unmatched) {rematched}/{of}"
    )


def _rematched(session: Session, declined: list[int]) -> tuple[int, int]:
    """(declined requests the re-match answered, declined requests): answered means no mark
    left and a re-match offer made or an unmatched reason of a re-match recorded."""
    if not declined:
        return 0, 0
    requests = select(Assignment.request_id).where(Assignment.id.in_(declined)).distinct()
    of = len(session.scalars(requests).all())
    answered = union(
        select(Assignment.request_id).where(
            Assignment.request_id.in_(requests), Assignment.origin == AssignmentOrigin.REMATCH
        ),
        select(UnmatchedReason.request_id).where(
            UnmatchedReason.request_id.in_(requests), UnmatchedReason.source == REMATCH
        ),
    ).subquery()
    done = select(func.count()).select_from(
        select(HelpRequest.id)
        .where(HelpRequest.id.in_(select(answered.c.request_id)))
        .where(HelpRequest.rematch_requested_at.is_(None))
        .subquery()
    )
    return int(session.scalar(done) or 0), of


def _p(result: Result, q: float) -> float:
    every = [x for v in result.latencies.values() for x in v]
    return float(np.percentile(every, q)) * 1000 if every else float("nan")


def _cpu(result: Result) -> str:
    worker = (
        f"; re-match worker {result.worker_cpu:.2f} s "
        f"({result.worker_cpu / max(len(result.declined), 1) * 1000:.1f} ms per decline, "
        f"{result.worker_drains} drain(s))"
        if result.worker_cpu
        else ""
    )
    per_request = 1000 / max(result.done, 1)
    return (
        f"driver {result.driver_cpu / result.seconds:.0%} of a core, "
        f"server {result.server_cpu / result.seconds:.0%} "
        f"({result.server_cpu * per_request:.1f} ms CPU/request with the worker's, the server "
        f"alone {(result.server_cpu - result.worker_cpu) * per_request:.1f}, of which event loop "
        f"{result.loop_cpu * per_request:.1f}){worker}"
    )


def report(
    name: str, clients: int, processes: int, ours: Result, peer: Result, mode: str, think: float
) -> None:
    ours_rps = ours.done / ours.seconds
    peer_rps = peer.done / peer.seconds
    ratio = (
        f"ratio {ours_rps / peer_rps:.2f} (target >= 0.5)"
        if think == 0
        else f"offered about {clients / think:.0f} req/s, so no throughput ratio"
    )
    print(
        f"\n  {name} [{mode}]: {clients} clients, {processes} process(es) — zhuqi "
        f"{ours_rps:.0f} req/s ({ours.done} in {ours.seconds:.1f} s), bare peer "
        f"{peer_rps:.0f} req/s, {ratio}; zhuqi p50 "
        f"{_p(ours, 50):.0f} ms, p99 {_p(ours, 99):.0f} ms (peer p99 {_p(peer, 99):.0f} ms); "
        f"errors {sum(ours.errors.values())} (peer {sum(peer.errors.values())})"
    )
    print(f"    CPU zhuqi (server + re-match worker): {_cpu(ours)}\n    CPU peer:  {_cpu(peer)}")
    print(f"    {'endpoint':<18}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for label, values in sorted(ours.latencies.items()):
        p50, p95, p99 = np.percentile(values, [50, 95, 99]) * 1000
        print(f"    {label:<18}{len(values):>6}{p50:>9.0f}{p95:>9.0f}{p99:>9.0f}")
    for label, count in sorted(ours.errors.items()):
        print(f"    ERROR {label}: {count}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--clients", default="50,200,400")
    parser.add_argument("--processes", default="1", help="e.g. 1,2 (PostgreSQL only above 1)")
    parser.add_argument("--requests", type=int, default=3000, help="request budget per level")
    parser.add_argument("--deadline", type=float, default=60, help="seconds per level")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure zhuqi and the peer alternately this many times per level and print the "
        "median of the rounds' ratios (the machine's noise moves a single ratio by +-0.1)",
    )
    parser.add_argument("--size", type=int, default=10_000, help="enterprises and providers")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="extra mode: clients as users with this mean think time (s) between requests",
    )
    parser.add_argument(
        "--offers",
        type=int,
        default=0,
        help="offers to keep for the mix, out of what one published match run over every "
        "region makes; default: enough for every accept and decline; when they run out, "
        "accepts and declines become reads of /users/me",
    )
    parser.add_argument(
        "--driver",
        choices=("lean", "httpx"),
        default="lean",
        help="lean: bench/lean_http.py (about a tenth of httpx's CPU per request); httpx: as before",
    )
    parser.add_argument(
        "--pin", action="store_true", help="run P server processes on cores 0..P-1 (taskset)"
    )
    parser.add_argument(
        "--keep-world",
        metavar="DBNAME",
        help="PostgreSQL only: build the world once into this database and reuse it in later "
        "runs while it has enough unused offers (each run's writes stay in it)",
    )
    return parser


def one_round(
    url: str,
    kind: str,
    clients: int,
    processes: int,
    args: argparse.Namespace,
    world: World,
    modes: list[tuple[str, float]],
) -> float:
    """zhuqi, then the peer, at one level; reported; the closed loop's throughput ratio."""
    upkeep(url)
    with server("app.main:app_factory", url, processes, pin=args.pin) as served:
        ours = [measure(served, clients, args, world, t) for _, t in modes]
    upkeep(url)
    with server("bench.bare_app:app_factory", url, processes, pin=args.pin) as served:
        peer = [measure(served, clients, args, None, t) for _, t in modes]
    for (mode, think), mine, theirs in zip(modes, ours, peer, strict=True):
        report(kind, clients, processes, mine, theirs, mode, think)
        print("    " + check_writes(url, mine), flush=True)
    return (ours[0].done / ours[0].seconds) / (peer[0].done / peer[0].seconds)


def main() -> None:
    args = build_parser().parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    process_counts = [int(p) for p in args.processes.split(",")]
    for kind in args.databases.split(","):
        print(f"\n== {kind}", flush=True)
        with world_database(kind, args.keep_world, "load") as url:
            modes = [("closed loop", 0.0)] + (
                [(f"users, think {args.think:g} s", args.think)] if args.think else []
            )
            offers_needed = args.offers or (
                int(
                    args.requests
                    * 0.09
                    * len(levels)
                    * len(process_counts)
                    * len(modes)
                    * args.rounds
                )
                + 50
            )
            world = obtain_world(url, args.keep_world, size=args.size, offers=offers_needed)
            for processes in process_counts if kind == "postgresql" else [1]:
                for clients in levels:
                    ratios = [
                        one_round(url, kind, clients, processes, args, world, modes)
                        for _ in range(args.rounds)
                    ]
                    if args.rounds > 1:
                        print(
                            f"\n  {kind}: {clients} clients, {processes} process(es): ratio "
                            f"median {statistics.median(ratios):.2f} of {args.rounds} rounds "
                            f"({', '.join(f'{r:.2f}' for r in ratios)}; target >= 0.5)",
                            flush=True,
                        )
            keep_world(world, args.keep_world)


if __name__ == "__main__":
    main()
