"""Application factory. Nothing touches the database at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from app.api import api_router
from app.common.schemas import ProblemDetail
from app.db import make_engine, make_session_factory
from app.errors import install_error_handlers
from app.health.router import router as health_router
from app.match_runs.runner import Sessions
from app.match_runs.worker import Worker, default_worker_id
from app.settings import Settings, get_settings

PROBLEM = {"model": ProblemDetail, "content": {"application/problem+json": {}}}


def create_app(settings: Settings | None = None, *, manage_engine: bool = True) -> FastAPI:
    """Build the service. ``manage_engine=False`` lets tests bind their own sessions."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker: Worker | None = None
        if manage_engine:
            engine = make_engine(settings.database_url, echo=settings.sql_echo)
            app.state.engine = engine
            app.state.session_factories = {
                "write": make_session_factory(engine),
                "read": make_session_factory(engine, read_only=True),
            }
            if settings.embedded_worker:
                worker = _embedded_worker(app, settings)
        try:
            yield
        finally:
            if worker is not None:
                worker.stop(timeout=5)
            if manage_engine:
                app.state.engine.dispose()

    app = FastAPI(
        title="zhuqi 助企",
        summary="Matching SMEs in difficulty with volunteer experts and service platforms",
        version="0.1.0",
        lifespan=lifespan,
        responses={422: PROBLEM, 500: PROBLEM},
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(api_router)
    return app


def _embedded_worker(app: FastAPI, settings: Settings) -> Worker:
    """Match runs execute in a thread of the service, so SQLite needs no second process."""
    factories = app.state.session_factories
    worker = Worker(
        Sessions(write=factories["write"], read=factories["read"]),
        worker_id=default_worker_id("embedded"),
        lease=timedelta(seconds=settings.lease_seconds),
    )
    worker.start()
    app.state.match_worker = worker
    return worker


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory app.main:app_factory``."""
    return create_app()
