"""Logs, request ids and metrics: what an operator needs to watch the service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from app.observability.metrics import describe_process, instrument_pool, observe_request
from app.observability.middleware import RequestContextMiddleware
from app.observability.router import router as metrics_router
from app.settings import Settings


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Request ids, the access log and request metrics on every HTTP request; ``/metrics``;
    the database pool timed once the lifespan has built the engine."""
    app.add_middleware(RequestContextMiddleware, observe=observe_request)
    app.include_router(metrics_router)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        async with inner(application) as state:
            describe_process("api")
            engine = getattr(application.state, "engine", None)
            if engine is not None:
                instrument_pool(engine)
            yield state

    app.router.lifespan_context = lifespan
