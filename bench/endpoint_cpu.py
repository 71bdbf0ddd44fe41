"""Server CPU per request, endpoint by endpoint, against the bare FastAPI peer.

Throughput on a saturated core is the inverse of the CPU each request costs there, so this
measures that cost directly, one ``bench/load.py`` MIX label at a time: it seeds one scratch
database (``--size`` enterprises × providers), starts ``zhuqi`` (uvicorn, one process, pinned
to one core with ``--pin``), warms each label up, then drives it with ``--clients`` concurrent
keep-alive clients and reads the server process's user + system CPU from /proc before and
after. The peer, ``bench/bare_app.py`` (one indexed query per request, nothing of ours), is
measured the same way, and each label's line gives zhuqi's ms/request, the peer's, and
peer ÷ zhuqi (the throughput ratio one core would give if CPU were the only limit).

``--compare DIR`` also serves the app of another checkout (e.g. the lead's main) on the same
database in the same run, interleaved label by label with this one, so a change is judged
before → after under the same machine load.

Usage::

    .venv/bin/python bench/endpoint_cpu.py --database postgresql
    .venv/bin/python bench/endpoint_cpu.py --labels users.me,enterprises.get --requests 800
    .venv/bin/python bench/endpoint_cpu.py --labels users.me --compare /work/main --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import load
from lean_http import LeanClient
from scratch import scratch_database

HERE = Path(__file__).resolve().parents[1]
ZHUQI = "app.main:app_factory"
PEER = "bench.bare_app:app_factory"
# Heavy labels cost tens of ms each: fewer of them give the same precision.
HEAVY = frozenset({"stats", "supervision", "offers.accept", "offers.decline"})


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (uvicorn ``--workers 1`` serves in-process)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drive(base: str, world: load.World | None, label: str, n: int, clients: int) -> None:
    """``n`` requests of ``label`` from ``clients`` keep-alive clients; any error stops the run
    (an error answer costs a different amount of CPU, so the figure would mean nothing)."""
    result = load.Result()

    async def client_loop(seed: int) -> None:
        client = LeanClient(base)
        rng = random.Random(seed)
        try:
            for _ in range(n // clients):
                reply = (
                    await client.get(f"/items/{rng.randint(1, 2000)}")
                    if world is None
                    else await load._zhuqi_call(client, world, label, rng, result)
                )
                if reply.status_code >= 400:
                    raise RuntimeError(f"{label}: HTTP {reply.status_code}")
        finally:
            await client.aclose()

    await asyncio.gather(*(client_loop(i) for i in range(clients)))


def ms_per_request(
    served: load.Served, world: load.World | None, label: str, n: int, clients: int
) -> float:
    asyncio.run(_drive(served.base, world, label, 2 * clients, clients))  # warm up
    before = cpu_seconds(served.pid)
    asyncio.run(_drive(served.base, world, label, n, clients))
    return 1000 * (cpu_seconds(served.pid) - before) / (n // clients * clients)


@contextmanager
def serving(target: str, url: str, root: Path, *, pin: bool) -> Iterator[load.Served]:
    """``load.server`` for the code of checkout ``root``: it serves ``load.ROOT``, read once
    at start-up."""
    load.ROOT = root
    try:
        with load.server(target, url, 1, pin=pin) as served:
            load.ROOT = HERE
            yield served
    finally:
        load.ROOT = HERE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--labels", default=",".join(label for label, _ in load.MIX))
    parser.add_argument("--requests", type=int, default=400, help="per label (heavy ones: ÷4)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--size", type=int, default=2000, help="enterprises and providers")
    parser.add_argument("--rounds", type=int, default=1, help="median of this many passes")
    parser.add_argument("--compare", type=Path, help="another checkout to measure beside this")
    parser.add_argument("--pin", action="store_true", help="servers on core 0 (taskset)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    labels = args.labels.split(",")
    apps = {"zhuqi": HERE} | ({"compare": args.compare.resolve()} if args.compare else {})
    counts = {lbl: args.requests // 4 if lbl in HEAVY else args.requests for lbl in labels}
    offer_labels = [lbl for lbl in labels if lbl.startswith("offers")]
    # each accept or decline consumes a prepared offer (one of the published match run's)
    needed = sum(counts[lbl] + 2 * args.clients for lbl in offer_labels) * len(apps) * args.rounds
    offers = needed + 20 if offer_labels else 5
    figures: dict[tuple[str, str], list[float]] = {}
    with scratch_database(args.database, "cpu") as url:
        world = load.build_world(url, size=args.size, offers=offers)
        if len(world.offers) < needed:
            # Past the last offer an accept or decline is a /users/me read: its figure would
            # silently be the wrong endpoint's.
            sys.exit(
                f"only {len(world.offers)} offers could be made at --size {args.size}, "
                f"{needed} are needed: raise --size, or lower --requests or --rounds"
            )
        with ExitStack() as stack:
            servers = {
                name: stack.enter_context(serving(ZHUQI, url, root, pin=args.pin))
                for name, root in apps.items()
            }
            peer = stack.enter_context(serving(PEER, url, HERE, pin=args.pin))
            for _ in range(args.rounds):
                for label in labels:
                    for name, served in servers.items():
                        ms = ms_per_request(served, world, label, counts[label], args.clients)
                        figures.setdefault((name, label), []).append(ms)
                    ms = ms_per_request(peer, None, label, args.requests, args.clients)
                    figures.setdefault(("peer", label), []).append(ms)
    report(labels, list(apps), figures, args)


def report(
    labels: list[str],
    apps: list[str],
    figures: dict[tuple[str, str], list[float]],
    args: argparse.Namespace,
) -> None:
    print(
        f"\nserver CPU ms/request, {args.database}, {args.clients} clients, "
        f"median of {args.rounds} round(s); ratio = peer ÷ zhuqi"
    )
    head = "".join(f"{name:>10}" for name in apps)
    print(
        f"{'label':<20}{head}{'peer':>10}{'ratio':>8}"
        + ("   compare→zhuqi" if len(apps) > 1 else "")
    )
    for label in labels:
        mine = {name: statistics.median(figures[(name, label)]) for name in apps}
        peer = statistics.median(figures[("peer", label)])
        cells = "".join(f"{mine[name]:10.2f}" for name in apps)
        line = f"{label:<20}{cells}{peer:10.2f}{peer / mine['zhuqi']:8.2f}"
        if "compare" in mine:
            line += f"   {mine['zhuqi'] / mine['compare']:.2f}×"
        print(line, flush=True)


if __name__ == "__main__":
    main()
