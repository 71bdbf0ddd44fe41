"""A lean HTTP/1.1 keep-alive client for the load bench: what httpx does, minus its cost.

Why: on this 2-core machine the load driver shares the cores with the servers it measures,
and httpx's async client spent about 3 ms of CPU per request here (more than the bare peer
server's 1.5 ms), so the driver, not the peer, set the peer's ceiling. This client writes a
request line and headers, reads the status line, headers and a ``Content-Length`` body, and
keeps each connection for the next request. It supports exactly what the bench's servers
(uvicorn) answer: no chunked bodies, no redirects, no TLS. Anything else is an error, never a
silent misreading.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode, urlsplit


class LeanError(Exception):
    """A response this client cannot read (or a connection that broke mid-way)."""


class LeanResponse:
    __slots__ = ("content", "path", "status_code")

    def __init__(self, status_code: int, content: bytes, path: str) -> None:
        self.status_code = status_code
        self.content = content
        self.path = path

    def json(self) -> Any:
        return json.loads(self.content)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, head: bytes, body: bytes) -> tuple[int, bytes, bool]:
        """Send one request; return (status, body, whether the server keeps the connection)."""
        self.writer.write(head + body)
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise LeanError("connection closed before a response") from exc
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, keep = 0, True
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                raise LeanError(f"unsupported transfer-encoding {value.strip()}")
            elif name == "connection" and value.strip().lower() == "close":
                keep = False
        content = await self.reader.readexactly(length) if length else b""
        return status, content, keep

    def close(self) -> None:
        self.writer.close()


class LeanClient:
    """``get``/``post`` against one base URL over a pool of keep-alive connections."""

    def __init__(self, base_url: str, *, timeout: float = 30) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self._idle: list[_Connection] = []
        self._host_header = f"Host: {self.host}:{self.port}\r\n"

    async def get(
        self,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> LeanResponse:
        target = f"{path}?{urlencode(params)}" if params else path
        return await self._request("GET", target, path, headers, b"")

    async def post(
        self, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> LeanResponse:
        body = b"" if json is None else _dumps(json)
        extra = {"Content-Type": "application/json"} if json is not None else {}
        return await self._request("POST", path, path, (headers or {}) | extra, body)

    async def _request(
        self, method: str, target: str, path: str, headers: dict[str, str] | None, body: bytes
    ) -> LeanResponse:
        head = [f"{method} {target} HTTP/1.1\r\n", self._host_header]
        head += [f"{name}: {value}\r\n" for name, value in (headers or {}).items()]
        head.append(f"Content-Length: {len(body)}\r\n\r\n")
        connection = self._idle.pop() if self._idle else await self._connect()
        try:
            status, content, keep = await asyncio.wait_for(
                connection.exchange("".join(head).encode(), body), self.timeout
            )
        except BaseException:
            connection.close()
            raise
        if keep:
            self._idle.append(connection)
        else:
            connection.close()
        return LeanResponse(status, content, path)

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return _Connection(reader, writer)

    async def aclose(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()
