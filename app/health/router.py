"""Liveness and readiness, outside /api/v1 so load balancers need no token.

``/healthz`` is async and touches nothing shared: it answers while every admission slot,
thread and connection is busy, which is exactly when a load balancer asks. ``/readyz`` asks
the database with a short deadline, so a stuck database reads as "not ready" within seconds.
It also says how far ahead the holiday calendar reaches (a warning weeks before the year it
does not know) and how long work only a worker does has waited (a warning when no worker seems
to run); neither is ever "not ready": the API itself works without them.
"""

from __future__ import annotations

from anyio import fail_after, to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.common.clock import today
from app.common.workdays import calendar_outlook
from app.db import reader_of
from app.observability.backlog import Backlog, backlog

router = APIRouter(tags=["health"])

READY_DEADLINE_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (and its event loop answers)."""
    return {"status": "ok"}


def _readiness(engine: Engine, stall_seconds: float) -> tuple[str | None, Backlog | None]:
    """The schema revision and, once migrated, the worker's backlog (three indexed reads)."""
    # A reader never queues behind a writer's lock on SQLite.
    with reader_of(engine).connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if revision is None:
            return None, None
        with Session(bind=connection) as session:
            return str(revision), backlog(session, stall_seconds=stall_seconds)


@router.get("/readyz", responses={503: {"description": "The database does not answer in time"}})
async def readyz(request: Request) -> JSONResponse:
    """The database answers, within a short deadline, and is migrated."""
    engine: Engine = request.app.state.engine
    settings = request.app.state.settings
    try:
        with fail_after(READY_DEADLINE_SECONDS):
            revision, work = await to_thread.run_sync(
                _readiness, engine, settings.worker_stall_seconds, abandon_on_cancel=True
            )
    except TimeoutError:
        return _unavailable("TimeoutError")
    except SQLAlchemyError as exc:
        return _unavailable(type(exc).__name__)
    outlook = calendar_outlook(today(), settings.holiday_file)
    return JSONResponse(
        {
            "status": "ready",
            "schema_revision": revision,
            "holiday_calendar": {
                "known_through": outlook.known_through,
                "days_left": outlook.days_left,
                "warning": outlook.warning,
            },
            "background": None
            if work is None
            else {"oldest_wait_seconds": work.oldest_seconds, "warning": work.warning},
        }
    )


def _unavailable(reason: str) -> JSONResponse:
    return JSONResponse(
        {"status": "unavailable", "detail": reason},
        status_code=503,
        headers={"Retry-After": "5"},
    )
