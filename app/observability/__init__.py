"""Logs, request ids and metrics: what an operator needs to watch the service."""

from __future__ import annotations

from fastapi import FastAPI

from app.observability.middleware import RequestContextMiddleware
from app.settings import Settings


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Request ids and the access log on every HTTP request."""
    app.add_middleware(RequestContextMiddleware)
