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

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.logs import bound, log_info

REQUEST_ID_HEADER: Final = "X-Request-ID"
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
    value = Headers(scope=scope).get(REQUEST_ID_HEADER)
    if value and VALID_REQUEST_ID.fullmatch(value):
        return value
    return None


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
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        started = time.perf_counter()
        with bound(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self._done(scope, status, time.perf_counter() - started)

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
