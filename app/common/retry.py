"""Whole-request retry of transient transaction failures, and clean 500s.

A deadlock (SQLSTATE 40P01) or serialization failure (40001) rolls the request's one
transaction back, so running the request again is safe: this middleware replays it a bounded
number of times. The error handler marks such responses with ``RETRY_MARKER``; the marker
never leaves the server. If every attempt fails the client gets the last answer, a 503
problem with ``Retry-After`` — never a 500.

It also turns an exception that escaped every handler into a 500 problem *here*, instead of
letting it reach the server: uvicorn closes a keep-alive connection without a word when the
application raises after its response.
"""

from __future__ import annotations

import json
import logging
import random

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PROBLEM_MEDIA_TYPE
from app.errors import RETRY_MARKER as _MARKER

logger = logging.getLogger(__name__)
RETRY_MARKER = _MARKER.encode()


class RetryTransientMiddleware:
    def __init__(self, app: ASGIApp, *, attempts: int = 3) -> None:
        self.app = app
        self.attempts = attempts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            outcome = _Attempt(send, may_retry=not last)
            try:
                await self.app(scope, _replay(body, receive), outcome.send)
            except Exception as exc:
                logger.error("unhandled error on %s", scope.get("path"), exc_info=exc)
                if outcome.started:
                    raise
                await _internal_error(scope, send)
                return
            if not outcome.retry:
                return
            logger.info("retrying %s after a deadlock (attempt %d)", scope.get("path"), attempt)
            await anyio.sleep(random.uniform(0.005, 0.03) * attempt)


class _Attempt:
    """Forwards one attempt's response, or swallows it when it is marked for a retry."""

    def __init__(self, send: Send, *, may_retry: bool) -> None:
        self._send = send
        self._may_retry = may_retry
        self.retry = False
        self.started = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", ())
            if any(name == RETRY_MARKER for name, _ in headers):
                if self._may_retry:
                    self.retry = True
                    return
                # The last attempt's answer goes out, without the marker; an unmarked one (every
                # request but a deadlocked one) goes out as it is, uncopied.
                headers = [(name, value) for name, value in headers if name != RETRY_MARKER]
                message = {**message, "headers": headers}
            self.started = True
        if self.retry:
            return
        await self._send(message)


async def _read_body(receive: Receive) -> bytes:
    """The whole body (bounded by ``InputEdgesMiddleware``, which runs outside this one)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _internal_error(scope: Scope, send: Send) -> None:
    payload = json.dumps(
        {
            "type": "about:blank",
            "title": "Internal error",
            "status": 500,
            "detail": "an unexpected error occurred",
            "instance": scope.get("path", ""),
        }
    ).encode()
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
