"""Process-local Prometheus metrics: what this process did (requests, runs, deliveries, pool).

**One exporter per process, not multiprocess mode.** Each API process serves its own
``/metrics`` and each ``zhuqi worker`` its own exporter on a separate bind
(``--metrics-port``); Prometheus scrapes every process as its own target and tells them apart
by ``instance`` (the ``zhuqi_process_info`` series also carries the pid and kind). Why not
``PROMETHEUS_MULTIPROC_DIR``: it needs one shared, wiped-at-start directory per host, which
separate containers do not have, and it cannot serve custom collectors — and our database
gauges (queue depth, backlog, open assignments) are exactly that: read once at scrape time,
not counted by any one process. Sum or ``max`` across instances in PromQL.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Mapping
from typing import Any, Final
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client import start_http_server as _start_http_server
from sqlalchemy import Engine
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import Pool, QueuePool

REGISTRY: Final = CollectorRegistry(auto_describe=True)
_INSTRUMENTED: Final[weakref.WeakSet[Pool]] = weakref.WeakSet()

PROCESS = Info("zhuqi_process", "This process: its kind and pid", registry=REGISTRY)
HTTP_REQUESTS = Counter(
    "zhuqi_http_requests",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "zhuqi_http_request_duration_seconds",
    "Time to answer, by route template and method",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
RUNS_FINISHED = Counter(
    "zhuqi_match_runs_processed",
    "Match runs this worker took to an end, by outcome",
    ["outcome"],
    registry=REGISTRY,
)
RUN_STAGE_SECONDS = Histogram(
    "zhuqi_match_run_stage_seconds",
    "Seconds per stage of a succeeded match run",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "zhuqi_notification_deliveries",
    "Notification delivery attempts, by channel and result (sent, failed, dead)",
    ["channel", "result"],
    registry=REGISTRY,
)
REMATCH_FAILURES = Counter(
    "zhuqi_rematch_failures",
    "Worker re-matches of a request that raised, by outcome (retried later, or given up)",
    ["outcome"],
    registry=REGISTRY,
)
POOL_CHECKOUT_SECONDS = Histogram(
    "zhuqi_db_pool_checkout_seconds",
    "Time spent waiting for a pooled database connection",
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
    registry=REGISTRY,
)
POOL_TIMEOUTS = Counter(
    "zhuqi_db_pool_timeouts",
    "Checkouts that gave up waiting for a pooled connection",
    registry=REGISTRY,
)
POOL_CHECKED_OUT = Gauge(
    "zhuqi_db_pool_checked_out", "Pooled connections in use now", registry=REGISTRY
)


def describe_process(kind: str) -> None:
    PROCESS.info({"kind": kind, "pid": str(os.getpid())})


# The labelled children per (route, method, status): ``labels()`` checks and joins its
# arguments and takes a lock on every call; the set is as bounded as the series themselves.
_REQUEST_SERIES: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    key = (route, method, status)
    series = _REQUEST_SERIES.get(key)
    if series is None:
        series = _REQUEST_SERIES.setdefault(
            key,
            (
                HTTP_REQUESTS.labels(route=route, method=method, status=str(status)),
                HTTP_SECONDS.labels(route=route, method=method),
            ),
        )
    series[0].inc()
    series[1].observe(seconds)


def observe_run(outcome: str) -> None:
    RUNS_FINISHED.labels(outcome=outcome).inc()


def observe_run_stages(seconds: Mapping[str, float]) -> None:
    for stage, value in seconds.items():
        RUN_STAGE_SECONDS.labels(stage=stage).observe(value)


def observe_delivery(channel: str, result: str, count: int = 1) -> None:
    if count:
        DELIVERIES.labels(channel=channel, result=result).inc(count)


def instrument_pool(engine: Engine) -> None:
    """Time each checkout (the wait for a free connection) and count give-ups. SQLAlchemy has
    no event before a checkout, so the pool's ``connect`` is wrapped, once per pool."""
    pool = engine.pool
    if pool in _INSTRUMENTED:
        return
    _INSTRUMENTED.add(pool)
    connect = pool.connect

    def timed_connect() -> Any:
        start = time.perf_counter()
        try:
            connection = connect()
        except PoolTimeout:
            POOL_TIMEOUTS.inc()
            raise
        finally:
            POOL_CHECKOUT_SECONDS.observe(time.perf_counter() - start)
        return connection

    # Instrumenting a third-party object is the one place an assignment to a method is right.
    pool.connect = timed_connect  # type: ignore[method-assign]
    if isinstance(pool, QueuePool):
        POOL_CHECKED_OUT.set_function(lambda: float(pool.checkedout()))


def start_exporter(port: int, address: str) -> WSGIServer:
    """A worker has no HTTP server of its own: serve its registry on a separate bind (no
    token there: keep the address private, loopback by default). Port 0 picks a free one."""
    server, _thread = _start_http_server(port, addr=address, registry=REGISTRY)
    return server
