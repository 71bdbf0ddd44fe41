"""Application factory. Nothing touches the database at import time."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from typing import Any

from anyio import to_thread
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import Engine

from app import console
from app.admission import AdmissionControl, AdmissionStats
from app.api import API_PREFIX, API_ROUTERS, gate_included_routers
from app.assignments.warmup import TextMemoWarmup, start_text_memo_warmup
from app.common.cache import TTLCache
from app.common.credential_notices import CredentialListener
from app.common.edges import InputEdgesMiddleware
from app.common.key_usage import ApiKeyUsage
from app.common.principal_cache import PrincipalCache, move_epoch, watch_credentials
from app.common.retry import RetryTransientMiddleware
from app.common.schemas import ProblemDetail
from app.common.threads import request_threads
from app.common.throttle import LogInThrottle
from app.db import (
    guard_read_only_sessions,
    make_engine,
    make_session_factory,
    session_scope,
)
from app.errors import install_error_handlers
from app.health.router import router as health_router
from app.match_runs.claims import Sessions
from app.observability import install_observability
from app.observability.logs import configure_logging
from app.settings import Settings, get_settings
from app.sqlite_checkpoints import Checkpointer, start_checkpointer
from app.stats.service import StatsCache
from app.supervision.pages import board_pages
from app.supervision.senders import senders_for
from app.webhooks.delivery import deliver_due
from app.worker.loop import Worker, default_worker_id

PROBLEM = {"model": ProblemDetail, "content": {"application/problem+json": {}}}
# Paths that never touch the database answer even when every admission slot is taken.
UNMETERED_PATHS = frozenset({"/healthz"})


def create_app(settings: Settings | None = None, *, manage_engine: bool = True) -> FastAPI:
    """Build the service. ``manage_engine=False`` lets tests bind their own sessions."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker: Worker | None = None
        worker_engine: Engine | None = None
        warmup: TextMemoWarmup | None = None
        checkpointer: Checkpointer | None = None
        notices: CredentialListener | None = None
        # One thread per admitted request, plus a few for exempt and background hops, in both
        # pools: the request path's own (app/common/threads.py) and anyio's (other sync work).
        request_threads.resize(settings.request_threads)
        to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        if manage_engine:
            engine = make_engine(
                settings.database_url,
                echo=settings.sql_echo,
                pool_size=settings.db_pool_size,
                pool_timeout=settings.db_pool_timeout,
                statement_timeout_ms=settings.db_statement_timeout_ms,
                network_timeout_ms=settings.db_network_timeout_ms,
            )
            app.state.engine = engine
            if engine.dialect.name == "postgresql" and settings.principal_cache_seconds > 0:
                notices = CredentialListener(
                    engine, move_epoch, network_timeout_ms=settings.db_network_timeout_ms
                ).start()
            app.state.credential_listener = notices
            checkpointer = start_checkpointer(engine, interval=settings.sqlite_checkpoint_seconds)
            app.state.sqlite_checkpointer = checkpointer
            app.state.session_factories = {
                "write": make_session_factory(engine),
                "read": make_session_factory(engine, read_only=True, statement_reads=True),
            }
            if settings.embedded_worker:
                worker, worker_engine = _embedded_worker(settings, checkpointer)
                app.state.match_worker = worker
            warmup = start_text_memo_warmup(
                app.state.session_factories["read"], limit=settings.text_warmup_providers
            )
            app.state.text_memo_warmup = warmup
        try:
            yield
        finally:
            if notices is not None:
                notices.stop()
            if warmup is not None:
                warmup.stop()
            if worker is not None:
                worker.stop(timeout=settings.shutdown_grace_seconds)
            if worker_engine is not None:
                worker_engine.dispose()
            request_threads.close()
            if checkpointer is not None:
                checkpointer.stop()
            if manage_engine:
                app.state.api_key_usage.flush(
                    lambda: session_scope(app.state.session_factories["write"])
                )
                app.state.engine.dispose()

    app = FastAPI(
        title="zhuqi 助企",
        summary="Matching SMEs in difficulty with volunteer experts and service platforms",
        version="0.1.0",
        lifespan=lifespan,
        # Statuses any operation can answer, whatever its own declarations add.
        responses=dict.fromkeys((400, 413, 422, 500, 503), PROBLEM),
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.login_throttle = LogInThrottle(
        per_address=settings.login_rate_per_address, per_account=settings.login_rate_per_account
    )
    app.state.api_key_usage = ApiKeyUsage(flush_seconds=settings.api_key_usage_flush_seconds)
    app.state.admission = AdmissionStats(limit=settings.inflight_limit)
    app.state.stats_cache = StatsCache(settings.stats_cache_seconds)
    app.state.principal_cache = PrincipalCache(settings.principal_cache_seconds)
    watch_credentials()
    guard_read_only_sessions()
    app.state.board_cache = TTLCache[Any](settings.stats_cache_seconds)  # supervision totals
    app.state.board_pages = board_pages(settings.board_cache_seconds)  # whole first pages
    app.add_middleware(
        AdmissionControl,
        limit=settings.inflight_limit,
        timeout=settings.admission_timeout,
        exempt=UNMETERED_PATHS,
        stats=app.state.admission,
    )
    # A deadlocked request is run again, each attempt admitted afresh.
    app.add_middleware(RetryTransientMiddleware, attempts=settings.transaction_attempts)
    # Outermost: a body is read (and refused past the limit) before it takes an admission slot.
    app.add_middleware(InputEdgesMiddleware, max_body_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    app.include_router(health_router)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    console.install(app, settings)
    install_observability(app, settings)
    gate_included_routers(app.router.routes)
    return app


def _embedded_worker(
    settings: Settings, checkpointer: Checkpointer | None
) -> tuple[Worker, Engine]:
    """Match runs execute in a thread of the service, so SQLite needs no second process.

    The worker has an engine of its own: its long transactions must never take a connection
    the admission limit counted on, and it needs no request statement timeout.
    """
    engine = make_engine(
        settings.database_url,
        echo=settings.sql_echo,
        pool_size=2,
        network_timeout_ms=settings.db_network_timeout_ms,
    )
    if checkpointer is not None:
        checkpointer.watch(engine)
    worker = Worker(
        Sessions(
            write=make_session_factory(engine),
            read=make_session_factory(engine, read_only=True),
        ),
        worker_id=default_worker_id("embedded"),
        lease=timedelta(seconds=settings.lease_seconds),
        senders=senders_for(settings),
        webhooks=partial(deliver_due, settings=settings),
        rematch_gather=timedelta(seconds=settings.rematch_gather_seconds),
    )
    worker.start()
    return worker, engine


def warm_routes(app: FastAPI) -> int:
    """Build every included router's route state now, before the first request.

    FastAPI builds the state of an included router's routes (dependants, response fields,
    pydantic adapters) lazily, on the first request that reaches that router: measured here,
    0.2-2 s of CPU per router and about 4 s for the whole API under load, paid by whichever
    requests arrive first, which set the p99 of a freshly started process. Walking the
    route contexts once builds and caches the same objects the router matches against.
    Returns how many routes were visited.
    """
    return sum(1 for _ in iter_route_contexts(app.routes))


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory app.main:app_factory``: a process that serves,
    so its routes are built before it accepts a connection (tests build apps lazily)."""
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    app = create_app(settings)
    warm_routes(app)
    freeze_startup_heap()
    return app


def freeze_startup_heap() -> None:
    """Leave the objects built at start-up out of every later garbage collection.

    The process starts with about a million objects (numpy, scipy, scikit-learn, pydantic
    schemas, the ORM mappers, every route's state) that live as long as it does. CPython's
    oldest generation is collected again whenever enough objects have survived since the
    last time, and each such collection walks the whole heap: measured here, one full
    collection every few thousand requests cost half a second, about 0.1 ms per request on
    average, spent re-proving that imported modules are alive. ``gc.freeze`` moves them to
    the permanent generation (the collector still runs for everything made afterwards).
    """
    gc.collect()
    gc.freeze()
