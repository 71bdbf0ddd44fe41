"""CPU per request, endpoint by endpoint, with the app called in process: no sockets, no HTTP.

Why beside ``bench/endpoint_cpu.py``: that one measures real servers, where the HTTP parsing,
the kernel's loopback and the driver's process all share the cores with what is measured,
and one figure moves by 20-40% from run to run. Here a child process imports the app of a
checkout, runs its lifespan, and calls it as an ASGI application on uvloop (as uvicorn runs
it), the endpoints' worker threads and the database round trips included; ``process_time``
counts every thread of the child. What is left out is the same constant for every app: the
HTTP parsing and the socket writes (about 0.2 ms a request here). The peer
(``bench/bare_app.py``: one indexed query per request) is measured the same way.

Children run in turn, round by round (``--compare DIR`` alternates this checkout with
another), so a change is judged before → after under the same machine load; each figure is
a child's best of three passes, and the report gives the median over rounds.

Usage::

    .venv/bin/python bench/inprocess_cpu.py                       # every MIX label
    .venv/bin/python bench/inprocess_cpu.py --labels users.me --compare /work/main --rounds 5
    .venv/bin/python bench/inprocess_cpu.py --keep-world zhuqi_cpu_world   # reuse a database
    .venv/bin/python bench/inprocess_cpu.py --count --keep-world zhuqi_cpu_world  # statements

``--count`` measures no CPU: one child per checkout sends each label's requests one at a
time (after the same warm-up) and reports, per request, the SQL statements and the round
trips to PostgreSQL they cost (statements, plus the BEGIN and COMMIT or ROLLBACK psycopg
sends around a transaction; autocommit reads send neither), the statements SQLAlchemy had
to compile (a compiled-cache miss), and the principal look-ups the principal cache missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lean_http import LeanResponse  # bench/'s own module, found through the line above

HERE = Path(__file__).resolve().parents[1]
PEER = "peer"
# Each accept or decline consumes one prepared offer.
OFFER_LABELS = ("offers.accept", "offers.decline")
PASSES = 3  # each child's figure is its best pass of this many
# a label's figure with this suffix: the CPU of every thread but the event loop's (the main
# thread), i.e. the request threads' (endpoints, SQLAlchemy, psycopg, commits)
THREADS = "@threads"
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


# ---------------------------------------------------------------- the child: one app, measured


class AsgiClient:
    """``LeanClient``'s two verbs, as direct calls of an ASGI app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> LeanResponse:
        content = json.dumps(body).encode() if body is not None else b""
        raw_headers = [(b"host", b"bench"), (b"content-length", str(len(content)).encode())]
        if content:
            raw_headers.append((b"content-type", b"application/json"))
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": urlencode(params or {}).encode(),
            "headers": raw_headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": content, "more_body": False}
            await asyncio.Event().wait()  # the client never hangs up
            raise AssertionError("unreachable")

        status, chunks = 0, []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return LeanResponse(status, b"".join(chunks), path)

    async def get(
        self, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> LeanResponse:
        return await self.request("GET", path, params=params, headers=headers)

    async def post(
        self, path: str, json: Any = None, headers: dict[str, str] | None = None
    ) -> LeanResponse:
        return await self.request("POST", path, headers=headers, body=json)


async def _measure(
    app: ASGIApp, world: Any, labels: list[str], n: int, clients: int, offer_n: int
) -> dict[str, float]:
    import load  # the child's own checkout's bench/load.py (sys.path)

    client = AsgiClient(app)
    result = load.Result()
    figures: dict[str, float] = {}
    for label in labels:

        async def one_client(seed: int, count: int, label: str = label) -> None:
            rng = random.Random(seed)
            for _ in range(count):
                reply: Any = (
                    await client.get(f"/items/{rng.randint(1, 2000)}")
                    if label == "bare.get"
                    else await load._zhuqi_call(client, world, label, rng, result)  # type: ignore[arg-type]
                )
                if reply.status_code >= 400:
                    raise RuntimeError(f"{label}: HTTP {reply.status_code} {reply.content[:300]!r}")

        count = offer_n if label in OFFER_LABELS else n
        warm = 2 if label in OFFER_LABELS else 20
        await asyncio.gather(*(one_client(i, warm) for i in range(clients)))
        passes = []
        for p in range(PASSES):
            started, loop_started = time.process_time(), time.thread_time()
            per_client = max(1, count // clients)
            await asyncio.gather(
                *(one_client(100 * (p + 1) + i, per_client) for i in range(clients))
            )
            done = per_client * clients
            total = 1000 * (time.process_time() - started) / done
            passes.append((total, total - 1000 * (time.thread_time() - loop_started) / done))
        best = min(passes)
        figures[label], figures[label + THREADS] = best
    return figures


class StatementCount:
    """Engine events of the child's app, totalled while one request at a time runs."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start the totals again (each label's own)."""
        self.statements = 0
        self.round_trips = 0
        self.compiled = 0
        self.texts: dict[str, int] = {}

    def listen(self, engine: Any) -> None:
        from sqlalchemy import event

        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._ending)
        event.listen(engine, "rollback", self._ending)

    @staticmethod
    def _in_transaction(dbapi_connection: Any) -> bool:
        from psycopg import pq

        return bool(dbapi_connection.info.transaction_status != pq.TransactionStatus.IDLE)

    def _statement(
        self, conn: Any, cursor: Any, statement: str, _p: Any, context: Any, _many: bool
    ) -> None:
        dbapi = conn.connection.dbapi_connection
        if not dbapi.autocommit and not self._in_transaction(dbapi):
            self.round_trips += 1  # psycopg sends BEGIN before this statement
        self.statements += 1
        self.round_trips += 1
        stats = context._get_cache_stats() if context is not None else ""
        if "generated" in stats:
            self.compiled += 1
        first = " ".join(statement.split())[:110]
        self.texts[first] = self.texts.get(first, 0) + 1

    def _ending(self, conn: Any) -> None:
        if self._in_transaction(conn.connection.dbapi_connection):
            self.round_trips += 1  # COMMIT or ROLLBACK


async def _count(app: Any, world: Any, labels: list[str], n: int, offer_n: int) -> dict[str, Any]:
    """Per label, the mean per request of what ``StatementCount`` totals (see the docstring)."""
    import load

    from app.common import principal_cache

    counter = StatementCount()
    counter.listen(app.state.engine)
    looked_up = [0]
    original_put = principal_cache.PrincipalCache.put

    def put(self: Any, *a: Any, **kw: Any) -> None:
        looked_up[0] += 1
        original_put(self, *a, **kw)

    principal_cache.PrincipalCache.put = put  # type: ignore[method-assign]
    client = AsgiClient(app)
    result = load.Result()
    figures: dict[str, Any] = {}
    for label in labels:
        rng = random.Random(7)
        count = offer_n if label in OFFER_LABELS else n
        for _ in range(2 if label in OFFER_LABELS else 20):
            await load._zhuqi_call(client, world, label, rng, result)  # type: ignore[arg-type]
        counter.reset()
        looked_up[0] = 0
        for _ in range(count):
            reply = await load._zhuqi_call(client, world, label, rng, result)  # type: ignore[arg-type]
            if reply.status_code >= 400:
                raise RuntimeError(f"{label}: HTTP {reply.status_code} {reply.content[:300]!r}")
        figures[label] = {
            "statements": counter.statements / count,
            "round_trips": counter.round_trips / count,
            "compiled": counter.compiled / count,
            "principal_lookups": looked_up[0] / count,
            "texts": {text: times / count for text, times in counter.texts.items()},
        }
    return figures


def child(args: argparse.Namespace) -> None:
    """Runs inside the checkout ``args.root``: its ``app`` package and its bench helpers."""
    root = Path(args.root).resolve()
    sys.path[:0] = [str(root), str(root / "bench")]
    os.environ.update(
        DATABASE_URL=args.url,
        ZHUQI_SECRET_KEY="bench-secret-key-that-is-long-enough-0123456789",
        ZHUQI_ENVIRONMENT="test",
        ZHUQI_EMBEDDED_WORKER="false",
        ZHUQI_LOG_LEVEL=args.log_level,
    )
    world = pickle.loads(Path(args.world_file).read_bytes())
    world.offers = world.offers[args.offers_from : args.offers_to]
    labels = args.labels.split(",")
    if args.peer:
        from bare_app import app_factory as peer_factory  # the checkout's bench/ is on the path

        app: Any = peer_factory()
        labels = ["bare.get"]
    else:
        from app.main import app_factory

        app = app_factory()

    async def run() -> dict[str, float]:
        if args.peer:
            return await _measure(
                app, world, labels, args.requests, args.clients, args.offer_requests
            )
        async with app.router.lifespan_context(app):
            if args.count:
                return await _count(app, world, labels, args.requests, args.offer_requests)
            return await _measure(
                app, world, labels, args.requests, args.clients, args.offer_requests
            )

    import uvloop

    print("RESULT " + json.dumps(uvloop.run(run())), flush=True)


# ---------------------------------------------------------------- the parent: worlds and rounds


def _run_child(
    root: Path,
    url: str,
    world_file: str,
    args: argparse.Namespace,
    *,
    peer: bool,
    offers: tuple[int, int],
) -> dict[str, float]:
    command = (
        [
            sys.executable,
            str(HERE / "bench" / "inprocess_cpu.py"),
            "--child",
            "--root",
            str(root),
            "--url",
            url,
            "--world-file",
            world_file,
            "--labels",
            args.labels,
            "--requests",
            str(args.requests),
            "--clients",
            str(args.clients),
            "--offer-requests",
            str(args.offer_requests),
            "--offers-from",
            str(offers[0]),
            "--offers-to",
            str(offers[1]),
            "--log-level",
            args.log_level,
        ]
        + (["--peer"] if peer else [])
        + (["--count"] if args.count else [])
    )
    # The logs go to a file, as a served process's do (a pipe read at the end would differ).
    with tempfile.TemporaryFile(mode="w+") as logs:
        done = subprocess.run(
            command, cwd=root, stdout=subprocess.PIPE, stderr=logs, text=True, check=False
        )
        for line in done.stdout.splitlines():
            if line.startswith("RESULT "):
                figures: dict[str, float] = json.loads(line[len("RESULT ") :])
                return figures
        logs.seek(0)
        stderr = logs.read()
    sys.exit(f"the child for {root} failed:\n{done.stdout[-2000:]}\n{stderr[-4000:]}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--labels", default=None, help="comma-separated MIX labels (all)")
    parser.add_argument("--requests", type=int, default=1000, help="per label and pass")
    parser.add_argument(
        "--offer-requests",
        type=int,
        default=40,
        help="per offer label and pass (each uses an offer)",
    )
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--size", type=int, default=2000, help="enterprises and providers")
    parser.add_argument("--rounds", type=int, default=3, help="median of this many children")
    parser.add_argument("--compare", type=Path, help="another checkout, measured in turn")
    parser.add_argument("--keep-world", metavar="DBNAME", help="build once into this database")
    parser.add_argument("--no-peer", action="store_true", help="skip the bare peer")
    parser.add_argument(
        "--count",
        action="store_true",
        help="statements and round trips per request instead of CPU (one round, no peer)",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=("WARNING", "INFO"),
        help="the app's ZHUQI_LOG_LEVEL: INFO writes the access line of every request (to a "
        "temporary file, as the served bench's logs go to one)",
    )
    # the child's own arguments
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--world-file", help=argparse.SUPPRESS)
    parser.add_argument("--offers-from", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--offers-to", type=int, default=0, help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.child:
        child(args)
        return
    sys.path.insert(0, str(HERE / "bench"))
    import load

    args.labels = args.labels or ",".join(label for label, _ in load.MIX)
    labels = args.labels.split(",")
    if args.count:
        args.rounds, args.no_peer = 1, True
    apps = {"zhuqi": HERE} | ({"compare": args.compare.resolve()} if args.compare else {})
    per_child = sum(
        PASSES * args.offer_requests + 2 * args.clients + PASSES * args.clients
        for label in labels
        if label in OFFER_LABELS
    )
    children = len(apps) * args.rounds
    figures: dict[tuple[str, str], list[float]] = {}
    counts: dict[str, Any] = {}
    with load.world_database(args.database, args.keep_world, "inproc") as url:
        world = load.obtain_world(url, args.keep_world, size=args.size, offers=per_child * children)
        if per_child and len(world.offers) < per_child * children:
            sys.exit(
                f"only {len(world.offers)} offers at --size {args.size}; {per_child * children} "
                "are needed: raise --size, or lower --requests or --rounds"
            )
        with tempfile.NamedTemporaryFile(suffix=".world.pkl") as world_file:
            world_file.write(pickle.dumps(world))
            world_file.flush()
            used = 0
            for _ in range(args.rounds):
                for name, root in apps.items():
                    slice_ = (used, used + per_child)
                    used += per_child
                    got = _run_child(root, url, world_file.name, args, peer=False, offers=slice_)
                    if args.count:
                        counts[name] = got
                        continue
                    for label, ms in got.items():
                        figures.setdefault((name, label), []).append(ms)
                if not args.no_peer:
                    got = _run_child(HERE, url, world_file.name, args, peer=True, offers=(0, 0))
                    for key in ("bare.get", "bare.get" + THREADS):
                        figures.setdefault(("peer", key), []).append(got[key])
            world.offers = world.offers[used:]  # the children's are used up in the database
            load.keep_world(world, args.keep_world)
    if args.count:
        report_counts(labels, counts)
    else:
        report(labels, list(apps), figures, args)


def report_counts(labels: list[str], counts: dict[str, Any]) -> None:
    """One table of the means per request, then each label's statements (zhuqi's checkout)."""
    keys = ("statements", "round_trips", "compiled", "principal_lookups")
    print("\nper request (mean):", "  ".join(f"{k}" for k in keys))
    print(f"{'label':<20}" + "".join(f"{name + ' ' + k[:5]:>18}" for k in keys for name in counts))
    for label in labels:
        cells = "".join(f"{counts[name][label][k]:18.2f}" for k in keys for name in counts)
        print(f"{label:<20}{cells}")
    for name, by_label in counts.items():
        for label in labels:
            print(f"\n{name} {label}:")
            for text, times in by_label[label]["texts"].items():
                print(f"  {times:5.2f} × {text}")


def report(
    labels: list[str],
    apps: list[str],
    figures: dict[tuple[str, str], list[float]],
    args: argparse.Namespace,
) -> None:
    peer = statistics.median(figures[("peer", "bare.get")]) if not args.no_peer else None
    print(
        f"\nin-process CPU ms/request, {args.database}, {args.clients} clients, median of "
        f"{args.rounds} round(s)"
        + (f"; peer (bare.get) {peer:.3f} ms" if peer else "")
        + (
            f", of which its request threads {statistics.median(figures[('peer', 'bare.get' + THREADS)]):.3f} ms"
            if peer
            else ""
        )
        + f"\n(label{THREADS}: the part of the label's CPU spent outside the event loop's thread)"
    )
    head = "".join(f"{name:>10}" for name in apps)
    print(
        f"{'label':<20}{head}"
        + (f"{'peer÷':>8}" if peer else "")
        + ("   zhuqi÷compare" if len(apps) > 1 else "")
    )
    for label in [x for name in labels for x in (name, name + THREADS)]:
        if (apps[0], label) not in figures:
            continue
        mine = {name: statistics.median(figures[(name, label)]) for name in apps}
        line = f"{label:<20}" + "".join(f"{mine[name]:10.3f}" for name in apps)
        if peer:
            peers = statistics.median(figures[("peer", "bare.get" + THREADS)])
            line += f"{(peers if label.endswith(THREADS) else peer) / mine['zhuqi']:8.2f}"
        if "compare" in mine:
            line += f"   {mine['zhuqi'] / mine['compare']:.3f}"
        print(line, flush=True)
    weights = dict(_mix())
    if set(labels) >= set(weights):
        total = sum(weights.values())
        for name in apps:
            mean = sum(w * statistics.median(figures[(name, lbl)]) for lbl, w in weights.items())
            print(
                f"MIX-weighted mean, {name}: {mean / total:.3f} ms"
                + (f" (peer ÷ {peer / (mean / total):.2f})" if peer else "")
            )


def _mix() -> list[tuple[str, int]]:
    import load

    return list(load.MIX)


if __name__ == "__main__":
    main()
