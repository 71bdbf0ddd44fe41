"""Province scale end to end, through the product, stage by stage (issues 7.6 and 13.4).

Seeds a fresh database, starts ``zhuqi serve`` (API) on loopback and runs the match run in a
``zhuqi worker --once`` process, then times: seed, a match run for the largest province
(snapshot, supply, match, write as the run reports them), publish (HTTP), the worker's
preparation of the plans a large publish leaves to it (its batches, run here in-process as
``Worker.prepare_plans`` runs them, until the run reports none awaiting), a decline (the
request, which only marks the request) and apart from it the worker's re-match of it (its
drain, as ``Worker.rematch_declined`` runs it: the process's first, then a second of the
same category), a deadline sweep of
expired offers (bounded batches), ``/stats`` and ``/supervision``. Prints each time, the peak RSS of the worker and API processes, and the
ratios against peers measured in the same run:

- run ÷ bare ``matching.match`` on the same snapshot (target <= 1.5), the peer's first call
  in a fresh process as the worker's is, with the cyclic collector paused as the worker
  pauses it (so the ratio is the service's own cost); and apart from it
  ``run_vs_bare_plain`` against the peer with the collector on;
- publish ÷ the run's own write stage (target <= 2): the HTTP publish only; the deferred
  plan preparation is its own row;
- re-match ÷ full run (target <= 0.05): the decline that is the process's first re-match
  (the engine's memo of analyzed provider texts emptied, so the bare match run in this
  process does not warm it, then warmed as a new API or worker process warms it in the
  background at start), and apart from it a second decline of the same category, as a
  long-lived API or worker process meets it. A first re-match without the warm-up is
  printed for comparison.

Usage::

    .venv/bin/python bench/service.py --database postgresql --enterprises 100000 --providers 50000
    .venv/bin/python bench/service.py --database sqlite --enterprises 10000 --providers 10000
    .venv/bin/python bench/service.py --database sqlite --enterprises 2k --providers 1k   # quick
    .venv/bin/python bench/service.py --database postgresql --template zhuqi_service_10k  # kept seed

PostgreSQL is reached at ``ZHUQI_TEST_PG`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432``);
a scratch database is created and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import tree_cpu_seconds
from scratch import count, scratch_database, template_copy

from app.assignments import rematch, rematch_queue
from app.assignments import service as assignment_service
from app.assignments.schemas import Decline
from app.assignments.warmup import warm_text_memo
from app.bundling import preparation
from app.common.clock import utc_now
from app.common.idsets import in_ids
from app.common.principal import Principal
from app.db import make_engine, make_session_factory
from app.models import Assignment, AssignmentStatus, Enterprise, HelpRequest, Role, User
from app.settings import Settings
from app.supervision import batches
from matching.scoring.text import clear_token_memo

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SECRET = "bench-secret-key-that-is-long-enough-0123456789"
WARMUP_PROVIDERS = Settings.model_fields["text_warmup_providers"].default
TARGETS = {
    "run_vs_bare": 1.5,
    "run_vs_bare_plain": 1.5,  # the peer with the collector on, as a plain caller runs it
    "publish_vs_write": 2.0,
    "rematch_vs_run": 0.05,
    "rematch_warm_vs_run": 0.05,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="sqlite")
    parser.add_argument("--enterprises", type=count, default=count("10k"))
    parser.add_argument("--providers", type=count, default=count("10k"))
    parser.add_argument("--sweep-offers", type=int, default=2000, help="offers backdated to expire")
    parser.add_argument(
        "--template",
        help="seeded database to keep and reuse (PostgreSQL: a name; SQLite: a file): seeded "
        "when missing, then every run works on a throw-away copy of it; the seed row is the "
        "copy's time (and the seeding's when the template was missing); the template keeps "
        "the sizes it was seeded with",
    )
    return parser


class PeakRss:
    """Samples a child's high-water mark (``VmHWM``) until it exits: its peak RSS in MB."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process, self.peak = process, 0.0
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        status = Path(f"/proc/{self.process.pid}/status")
        while self.process.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak = max(self.peak, int(line.split()[1]) / 1024)
            except OSError:
                return
            time.sleep(0.1)


def _env(url: str) -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": url,
        "ZHUQI_SECRET_KEY": SECRET,
        "ZHUQI_EMBEDDED_WORKER": "false",
        "ZHUQI_STATS_CACHE_SECONDS": "0",
        "ZHUQI_BOARD_CACHE_SECONDS": "0",
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(times: dict[str, float], name: str, started: float) -> None:
    times[name] = time.perf_counter() - started
    print(f"  {name:<22} {times[name]:9.2f} s", flush=True)


def seed(url: str, args: argparse.Namespace) -> None:
    command = [PYTHON, "-m", "seed", "--database-url", url, "--enterprises", str(args.enterprises)]
    command += ["--providers", str(args.providers)]
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


@contextmanager
def seeded(args: argparse.Namespace, times: dict[str, float]) -> Iterator[str]:
    """A freshly seeded scratch database, or a copy of the kept template."""
    started = time.perf_counter()
    if args.template:
        with template_copy(args.database, args.template, lambda url: seed(url, args)) as url:
            _timed(times, "seed (template copy)", started)
            yield url
        return
    with scratch_database(args.database, "bench") as url:
        seed(url, args)
        _timed(times, "seed (+ANALYZE)", started)
        yield url


def largest_province(url: str) -> str:
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        province = func.substr(Enterprise.region_code, 1, 2)
        row = session.execute(
            select(province, func.count())
            .join(HelpRequest, HelpRequest.enterprise_id == Enterprise.id)
            .where(HelpRequest.status.in_(("triaged",)))
            .group_by(province)
            .order_by(func.count().desc())
            .limit(1)
        ).first()
    engine.dispose()
    assert row is not None, "no triaged request to match"
    return str(row[0])


# The peer's child: a fresh process, as ``zhuqi worker --once`` is, reads the run's snapshot
# and times one ``matching.match`` on it (its first, like the worker's).
BARE = """
import json, os, resource, sys, time
from contextlib import nullcontext
import matching
from app.assignments.encode import Scope, locked_pairs, snapshot
from app.common.collector import paused
from app.db import make_engine, make_session_factory
from app.models import HelpRequest
region, weights, way = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
engine = make_engine(os.environ["DATABASE_URL"])
with make_session_factory(engine)() as session:
    scope = Scope(region)
    ids = list(session.scalars(scope.statement().with_only_columns(HelpRequest.id)))
    problem = snapshot(session, scope, pinned=locked_pairs(session, ids)).problem
engine.dispose()
started = time.perf_counter()
with paused() if way == "paused" else nullcontext():
    matching.match(problem, matching.Weights(**weights))
seconds = time.perf_counter() - started
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def bare_match(url: str, region: str, weights: dict[str, Any]) -> dict[str, float]:
    """The peer: ``matching.match`` alone on the snapshot the run reads, each in a fresh
    process as the worker's is: called with the collector paused, as the worker calls it,
    and plainly."""
    seconds = {}
    for way in ("paused", "plain"):
        done = subprocess.run(
            [PYTHON, "-c", BARE, region, json.dumps(weights), way],
            cwd=ROOT,
            env=_env(url),
            check=True,
            capture_output=True,
            text=True,
        )
        took, peak_mb = done.stdout.split()[-2:]
        seconds[way] = float(took)
        print(f"    peer, collector {way}: peak RSS {float(peak_mb):.0f} MB")
    return seconds


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    print(
        f"service benchmark: {args.database}, {args.enterprises} enterprises, "
        f"{args.providers} providers"
    )
    times: dict[str, float] = {}
    with seeded(args, times) as url:
        region = largest_province(url)
        port = _free_port()
        api = subprocess.Popen(
            [PYTHON, "-c", "from app.cli import main; main()", "serve", "--port", str(port)],
            cwd=ROOT,
            env=_env(url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        api_rss = PeakRss(api)
        try:
            results = _through_the_api(url, args, region, (port, api.pid), times)
        finally:
            api.terminate()
            api.wait(10)
        results["api_rss_mb"] = api_rss.peak
    _report(args, region, times, results)


def _wait_up(client: httpx.Client) -> None:
    for _ in range(600):
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the API did not start")


def _through_the_api(
    url: str,
    args: argparse.Namespace,
    region: str,
    api: tuple[int, int],
    times: dict[str, float],
) -> dict[str, Any]:
    """``api``: the API's port and process id."""
    results: dict[str, Any] = {}
    port, api_pid = api
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
        _wait_up(client)
        token = client.post(
            "/api/v1/auth/token",
            data={"username": "admin@zhuqi.demo", "password": "zhuqi-demo"},
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        run = client.post("/api/v1/match-runs", json={"scope_region": region}, headers=auth)
        assert run.status_code == 202, run.text
        run_id = run.json()["id"]
        started, api_cpu = time.perf_counter(), tree_cpu_seconds(api_pid)
        worker = subprocess.Popen(
            [PYTHON, "-c", "from app.cli import main; main()", "worker", "--once"],
            cwd=ROOT,
            env=_env(url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        worker_rss = PeakRss(worker)
        worker.wait()
        worker_rss.thread.join()
        _timed(times, f"match run (scope {region})", started)
        # Its start-up warm-up (text memo and models, in the background) may overlap the run.
        print(f"    API's CPU meanwhile {tree_cpu_seconds(api_pid) - api_cpu:6.2f} s")
        done = client.get(f"/api/v1/match-runs/{run_id}", headers=auth).json()
        assert done["status"] == "succeeded", done
        stats = done["stats"]
        results.update(stats=stats, worker_rss_mb=worker_rss.peak)
        for stage in ("snapshot", "supply", "engine", "write"):
            print(f"    {stage:<20} {stats['seconds'].get(stage, 0.0):9.2f} s")
        bare = bare_match(url, region, done["weights"])
        times["bare match"], times["bare match plain"] = bare["paused"], bare["plain"]
        print(f"  {'bare matching.match':<22} {times['bare match']:9.2f} s  (collector paused)")
        print(f"  {'  collector on':<22} {times['bare match plain']:9.2f} s")
        started = time.perf_counter()
        published = client.post(f"/api/v1/match-runs/{run_id}/publish", headers=auth)
        assert published.status_code == 200, published.text
        _timed(times, "publish", started)
        deferred = published.json()["run"]["plans_awaiting_preparation"]
        times["plans prepared"] = _prepare_plans(url)
        prepared = client.get(f"/api/v1/match-runs/{run_id}", headers=auth).json()
        assert prepared["plans_awaiting_preparation"] == 0, prepared
        print(
            f"  {'  plans prepared after':<22} {times['plans prepared']:9.2f} s  "
            f"({deferred} of {len(published.json()['plan_ids'])} plans deferred, "
            f"{preparation.BATCH} per transaction)"
        )
        (times["decline"], times["re-match"]), (_, times["re-match warm"]) = _decline_two(
            url, run_id
        )
        print(f"  {'decline (request)':<22} {times['decline']:9.2f} s  (marks the request)")
        print(f"  {'worker re-match':<22} {times['re-match']:9.2f} s  (first in the process)")
        print(f"  {'  next, same category':<22} {times['re-match warm']:9.2f} s")
        results["sweep"] = _sweep(url, run_id, args.sweep_offers, times)
        for path in ("/api/v1/stats", "/api/v1/supervision"):
            started = time.perf_counter()
            assert client.get(path, headers=auth).status_code == 200
            _timed(times, path, started)
    return results


def _prepare_plans(url: str) -> float:
    """Seconds the worker's preparation pass takes: the same call ``Worker.prepare_plans``
    makes on every poll, in short transactions of its own."""
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        preparation.prepare_pending(batches.begin_each(make_session_factory(engine)))
        return time.perf_counter() - started
    finally:
        engine.dispose()


def _decline_two(url: str, run_id: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Seconds of two declines, each (the decline, the worker's drain of its re-match): the
    process's first re-match, then another offer of the first one's category; the first as
    a new API or worker process meets it, with the engine's token memo emptied and then
    warmed as the process's background warm-up does at start (timed apart). Before those,
    for comparison in the same run, a first re-match of the same category without the
    warm-up, on an engine of its own (each first re-match compiles its statements afresh)."""
    first, second, unwarmed = _three_offers(url, run_id)
    _forget_texts()
    cold = _decline_on_new_engine(url, unwarmed)[0][1]
    print(f"  {'  first, no warm-up':<22} {cold:9.2f} s  (worker re-match)")
    _forget_texts()
    engine = make_engine(url)
    factory = make_session_factory(engine, read_only=True)
    started = time.perf_counter()
    analyzed = warm_text_memo(factory, limit=WARMUP_PROVIDERS)
    print(
        f"  {'  text memo warm-up':<22} {time.perf_counter() - started:9.2f} s  "
        f"({analyzed} texts, in the background at process start)"
    )
    engine.dispose()
    seconds = _decline_on_new_engine(url, first, second)
    return seconds[0], seconds[1]


def _forget_texts() -> None:
    """A new process's state: no text analyzed, no text model fitted."""
    clear_token_memo()
    rematch._TEXT_MODELS.models.clear()


def _three_offers(url: str, run_id: int) -> tuple[int, int, int]:
    """The run's first offer and two more of its category (same providers to fit on)."""
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        first = session.scalars(_offers(run_id).limit(1)).one()
        category = session.scalar(select(HelpRequest.category).filter_by(id=first.request_id))
        others = session.scalars(
            _offers(run_id)
            .join(HelpRequest, HelpRequest.id == Assignment.request_id)
            .where(HelpRequest.category == category, Assignment.id != first.id)
            .limit(2)
        ).all()
    engine.dispose()
    return others[0].id, others[1].id, first.id


def _decline_on_new_engine(url: str, *offer_ids: int) -> list[tuple[float, float]]:
    """Seconds of each decline in turn, on an engine of their own."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    seconds = [_decline(factory, offer_id) for offer_id in offer_ids]
    engine.dispose()
    return seconds


def _offers(run_id: int) -> Select[Assignment]:
    return (
        select(Assignment)
        .where(Assignment.match_run_id == run_id, Assignment.status == AssignmentStatus.OFFERED)
        .order_by(Assignment.id)
    )


def _decline(factory: sessionmaker[Session], offer_id: int) -> tuple[float, float]:
    """(the decline use case, the worker's drain that re-matches what it marked)."""
    with factory() as session, session.begin():
        offer = session.get_one(Assignment, offer_id)
        someone = session.scalar(select(User.id).order_by(User.id).limit(1)) or 0
        provider = Principal(
            user_id=someone, email="bench", role=Role.EXPERT, provider_id=offer.provider_id
        )
        started = time.perf_counter()
        assignment_service.decline(
            session, principal=provider, assignment=offer, data=Decline(reason_code="no_capacity")
        )
    declined = time.perf_counter() - started
    started = time.perf_counter()
    taken = rematch_queue.drain(batches.begin_each(factory), batches.begin_each(factory))
    assert taken == 1, taken
    return declined, time.perf_counter() - started


def _sweep(url: str, run_id: int, offers: int, times: dict[str, float]) -> dict[str, float]:
    """Backdate ``offers`` of the run so they expire; sweep in batches, timing each batch."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    past = utc_now() - timedelta(days=3)
    with factory() as session, session.begin():
        ids = session.scalars(
            select(Assignment.id)
            .where(Assignment.match_run_id == run_id, Assignment.status == AssignmentStatus.OFFERED)
            .order_by(Assignment.id)
            .limit(offers)
        ).all()
        session.execute(
            update(Assignment)
            .where(in_ids(Assignment.id, ids))
            .values(offered_at=past, offer_expires_at=past + timedelta(days=2))
            .execution_options(synchronize_session=False)
        )
    started = time.perf_counter()
    phases: dict[str, float] = {}

    def progress(phase: str, _done: int) -> None:  # when each phase last reported
        phases[phase] = time.perf_counter() - started

    report = batches.sweep(
        factory, open_read=make_session_factory(engine, read_only=True), progress=progress
    )
    _timed(times, f"sweep ({report.expired_offers} expired)", started)
    longest = report.longest_transaction_seconds
    print(
        f"    {report.transactions} transactions, longest write {longest:.2f} s; "
        f"{report.rematched_offers} re-matched, {report.notifications} notices for "
        f"{sum(report.overdue.values())} overdue items"
    )
    # The late-offer phase alone (announce, expire, re-match each batch): what issue 7.3 is
    # about, apart from the overdue lists that follow it.
    offers_s = phases.get("offers", 0.0)
    print(
        f"    late offers phase {offers_s:.2f} s "
        f"({1000 * offers_s / max(report.expired_offers, 1):.1f} ms per expired offer), "
        f"released {phases.get('released', offers_s) - offers_s:.2f} s"
    )
    engine.dispose()
    return {"longest_batch_s": longest, "expired": float(report.expired_offers)}


def _report(
    args: argparse.Namespace, region: str, times: dict[str, float], results: dict[str, Any]
) -> None:
    stats = results["stats"]
    run_seconds = stats["seconds"]["total"]
    ratios = {
        "run_vs_bare": run_seconds / max(times["bare match"], 1e-9),
        "run_vs_bare_plain": run_seconds / max(times["bare match plain"], 1e-9),
        "publish_vs_write": times["publish"] / max(stats["seconds"].get("write", 0.0), 1e-9),
        "rematch_vs_run": times["re-match"] / max(run_seconds, 1e-9),
        "rematch_warm_vs_run": times["re-match warm"] / max(run_seconds, 1e-9),
    }
    print(
        f"\nrequests {stats['requests']}, providers {stats['providers']}, "
        f"proposals {stats['proposals']} (scope {region})"
    )
    print(f"peak RSS: worker {results['worker_rss_mb']:.0f} MB, API {results['api_rss_mb']:.0f} MB")
    for name, value in ratios.items():
        verdict = "ok" if value <= TARGETS[name] else "OVER"
        print(f"ratio {name:<19} {value:6.2f}  (target <= {TARGETS[name]})  {verdict}")


if __name__ == "__main__":
    main()
