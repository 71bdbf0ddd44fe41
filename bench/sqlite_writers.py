"""SQLite writers under contention: the in-process writer gate against SQLite's busy handler.

SQLite admits one writer at a time. Without the gate (``app.db.writer_gate``) the others wait
in SQLite's busy handler, which sleeps 1, 2, 5 … then 100 ms between tries, and a newcomer
can take the lock ahead of a writer that has waited for seconds. With it, writers of one
process queue on a lock and the next one is let in as soon as the last one ends.

Threads of one process (as an API process's request threads) each run write transactions
holding the GIL for ``--cpu-ms`` inside (as our endpoints do between statements) and as much
again ``--other`` times between them (the rest of the mix); the latencies of the write
transactions are printed for both, round by round, on one core (``taskset -c 0`` as the
served benchmark pins its server).

    taskset -c 0 .venv/bin/python bench/sqlite_writers.py --threads 16 --writes 40 --rounds 3
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import text

from app import db


def _busy(ms: float) -> None:
    """Hold the GIL for ``ms`` of this thread's CPU, as Python work between statements does."""
    end = time.thread_time() + ms / 1000
    while time.thread_time() < end:
        pass


def run(*, gated: bool, threads: int, writes: int, cpu_ms: float, other: int) -> list[float]:
    """Seconds each write transaction took, end to end (waiting for the lock included)."""
    directory = tempfile.mkdtemp(prefix="zhuqi-sqlite-writers-")
    original = db.writer_gate
    if not gated:
        db.writer_gate = lambda _database: None  # type: ignore[assignment,return-value]
    try:
        engine = db.make_engine(
            f"sqlite:///{Path(directory) / 'writers.db'}",
            pool_size=threads,
            statement_timeout_ms=60_000,
        )
    finally:
        db.writer_gate = original
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    latencies: list[float] = []

    def client() -> None:
        for i in range(writes):
            started = time.perf_counter()
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t VALUES (:x)"), {"x": i})
                _busy(cpu_ms)
                connection.execute(text("SELECT count(*) FROM t")).scalar_one()
            latencies.append(time.perf_counter() - started)
            for _ in range(other):
                _busy(cpu_ms)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    engine.dispose()
    return sorted(latencies)


def _ms(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--writes", type=int, default=40, help="write transactions per thread")
    parser.add_argument("--cpu-ms", type=float, default=1.0, help="GIL held inside each write")
    parser.add_argument("--other", type=int, default=3, help="as much again between writes")
    parser.add_argument("--rounds", type=int, default=3)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    print("write transaction latency, ms (busy handler = no gate, SQLite's own retries)")
    for round_ in range(args.rounds):
        figures = {}
        for gated in (False, True):
            started = time.perf_counter()
            latencies = run(
                gated=gated,
                threads=args.threads,
                writes=args.writes,
                cpu_ms=args.cpu_ms,
                other=args.other,
            )
            wall = time.perf_counter() - started
            figures[gated] = _ms(latencies, 0.99)
            print(
                f"  round {round_} {'gate        ' if gated else 'busy handler'}"
                f"  wall {wall:6.2f} s  p50 {_ms(latencies, 0.5):7.1f}"
                f"  p95 {_ms(latencies, 0.95):7.1f}  p99 {_ms(latencies, 0.99):7.1f}"
                f"  max {latencies[-1] * 1000:7.1f}",
                flush=True,
            )
        print(f"  round {round_} p99 gate ÷ busy handler: {figures[True] / figures[False]:.2f}")


if __name__ == "__main__":
    main()
