"""Input edges checked before any endpoint runs: body size, and control characters in the URL.

Both live in one small ASGI middleware because they must act *before* parsing: a 100 MB JSON
body must be refused without being decoded, and a NUL byte in a query parameter must be a 422
naming the parameter on both databases (PostgreSQL refuses NUL in text, SQLite stores it).
String fields of request bodies are checked by the ``InputSchema`` base (``no_control_chars``).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PROBLEM_MEDIA_TYPE

# C0 controls and DEL, except tab, line feed and carriage return (legitimate in free text).
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def no_control_chars(value: str, where: str = "") -> str:
    """Refuse NUL and other control characters; tab and line breaks are free text."""
    if CONTROL_CHARS.search(value):
        raise ValueError(f"{where}must not contain NUL or other control characters".strip())
    return value


class InputEdgesMiddleware:
    """Refuse an oversized body (413) and control characters in path or query (422).

    The body is buffered up to ``max_body_bytes`` and replayed to the app, so nothing past the
    limit is ever read or parsed, whether or not the client sent ``Content-Length``.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bad_field = _control_char_field(scope)
        if bad_field is not None:
            await _problem(scope, send, 422, "Invalid input", bad_field)
            return
        if _declared_length(scope) > self.max_body_bytes:
            await _problem(scope, send, 413, "Request body too large", self._too_large())
            return
        body, more = await self._read_body(receive)
        if more:
            await _problem(scope, send, 413, "Request body too large", self._too_large())
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self) -> str:
        return f"the request body exceeds the limit of {self.max_body_bytes} bytes"

    async def _read_body(self, receive: Receive) -> tuple[bytes, bool]:
        """The whole body, or (partial, True) as soon as it passes the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks), False
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _control_char_field(scope: Scope) -> str | None:
    """The name of the first path or query part holding a control character, else None."""
    if CONTROL_CHARS.search(scope.get("path", "")):
        return "path"
    raw = scope.get("query_string", b"").decode("latin-1")
    if CONTROL_CHARS.search(unquote(raw)):
        for name, value in parse_qsl(raw, keep_blank_values=True):
            if CONTROL_CHARS.search(name) or CONTROL_CHARS.search(value):
                return name if not CONTROL_CHARS.search(name) else "query"
        return "query"
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _problem(scope: Scope, send: Send, status: int, title: str, detail_or_field: str) -> None:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if status == 422:
        field = detail_or_field
        body |= {
            "type": "/problems/invalid-input",
            "detail": f"{field}: must not contain NUL or other control characters",
            "field": field,
        }
    else:
        body |= {"type": "/problems/payload-too-large", "detail": detail_or_field}
    body["instance"] = scope.get("path", "")
    payload = json.dumps(body, ensure_ascii=False).encode()
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(payload)).encode()),
    ]
    if status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
