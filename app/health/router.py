"""Liveness and readiness, outside /api/v1 so load balancers need no token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.db import SQLITE_BEGIN_OPTION

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "The database does not answer"}})
def readyz(request: Request) -> JSONResponse:
    """The database answers and is migrated."""
    # A reader never queues behind a writer's lock on SQLite.
    engine = request.app.state.engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
    try:
        with engine.connect() as connection:
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError as exc:
        return JSONResponse(
            {"status": "unavailable", "detail": type(exc).__name__}, status_code=503
        )
    return JSONResponse({"status": "ready", "schema_revision": revision})
