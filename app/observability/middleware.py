"""Request ids and the access log, as a pure ASGI middleware.

A pure ASGI middleware (not ``BaseHTTPMiddleware``) keeps the endpoint in the same task and
context, so the ``request_id`` bound here reaches every log line of the request, including
those written from the threadpool that runs our ``def`` endpoints.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bind_contextvars, reset_contextvars

from app.observability.logs import log_info

REQUEST_ID_HEADER: Final = "X-Request-ID"
REQUEST_ID_KEY: Final = REQUEST_ID_HEADER.lower().encode("latin-1")  # as ASGI headers carry it
# Accept a caller's id only if it is short and harmless in a log line or a header.
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
UNMATCHED: Final = "<unmatched>"

access_log = logging.getLogger("zhuqi.access")

RequestObserver = Callable[[str, str, int, float], None]  # method, route, status, seconds


def route_template(scope: Scope) -> str:
    """``/api/v1/requests/{request_id}``, not the concrete path: bounded label values for
    metrics, and no identifiers or query strings (which may carry tokens) in the access log."""
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if not isinstance(template, str):
        return UNMATCHED
    # An included router's route knows only its own part (``/requests/{request_id}``); the
    # prefix it was included under is what the concrete path has in front of that part.
    params = {key: str(value) for key, value in scope.get("path_params", {}).items()}
    try:
        concrete = template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template
    path = str(scope.get("path", ""))
    return path.removesuffix(concrete) + template if path.endswith(concrete) else template


def incoming_request_id(scope: Scope) -> str | None:
    for name, raw in scope["headers"]:
        if name == REQUEST_ID_KEY:
            value: str = raw.decode("latin-1")
            return value if VALID_REQUEST_ID.fullmatch(value) else None
    return None


def _with_request_id(message: Message, request_id: bytes) -> None:
    """Set the response's ``X-Request-ID`` (replacing one the app set) on the start message."""
    headers = [item for item in message.get("headers", ()) if item[0] != REQUEST_ID_KEY]
    headers.append((REQUEST_ID_KEY, request_id))
    message["headers"] = headers


class RequestContextMiddleware:
    """Accept or mint an ``X-Request-ID``, return it, bind it to the logs, write one access
    line per request (method, route template, status, milliseconds) and tell ``observe``."""

    def __init__(self, app: ASGIApp, observe: RequestObserver | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope) or uuid.uuid4().hex
        status = 500  # what the client gets if the app dies before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                _with_request_id(message, request_id.encode("latin-1"))
            await send(message)

        started = time.perf_counter()
        # ``bound()`` without its generator-based context manager: this runs on every request.
        tokens = bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            try:
                self._done(scope, status, time.perf_counter() - started)
            finally:
                reset_contextvars(**tokens)

    def _done(self, scope: Scope, status: int, seconds: float) -> None:
        method, route = scope["method"], route_template(scope)
        log_info(
            access_log,
            "request",
            method=method,
            route=route,
            status=status,
            duration_ms=round(seconds * 1000, 2),
            client=(scope.get("client") or ("", 0))[0],
        )
        if self.observe is not None:
            self.observe(method, route, status, seconds)
