"""Admission control: the request path's concurrency model.

Why this exists: synchronous endpoints run in a bounded thread pool, and their session
dependency enters and exits in *separate* thread hops. With more clients than connections,
every thread can end up waiting for a connection while every connection is held by a request
whose exit code waits for a thread — the server stops answering (NOTES.md, fastapi#3205).

The model that rules this out: at most ``limit`` requests are *admitted* at once, where
``limit <= pooled connections`` and ``limit <= threads``. An admitted request holds at most one
pooled connection and needs at most one thread at a time, so it can always get both; requests
beyond the limit wait here, in the event loop, holding neither, and give up with 503 +
``Retry-After`` after ``timeout`` seconds instead of hanging. Exempt paths (``/healthz``) are
async and never touch the database, so they answer while the queue is full.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import problem


@dataclass
class AdmissionStats:
    """Live figures of one process, exported by ``/metrics`` (``zhuqi_admission_*``)."""

    limit: int
    inflight: int = 0
    waiting: int = 0
    rejected: int = 0
    admitted: int = 0
    _peak_waiting: int = field(default=0, repr=False)

    @property
    def peak_waiting(self) -> int:
        return self._peak_waiting


class AdmissionControl:
    """ASGI middleware admitting at most ``limit`` HTTP requests at once (see module doc)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        timeout: float,
        exempt: frozenset[str] = frozenset(),
        stats: AdmissionStats | None = None,
    ) -> None:
        self.app = app
        self.timeout = timeout
        self.exempt = exempt
        self.stats = stats or AdmissionStats(limit=limit)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore = asyncio.Semaphore(limit)

    def _semaphore_of_this_loop(self) -> asyncio.Semaphore:
        """A semaphore binds to the loop it first waits on; tests run several loops in turn."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.stats.limit)
        return self._semaphore

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        semaphore = self._semaphore_of_this_loop()
        stats = self.stats
        if not semaphore.locked():
            # A free slot is taken without suspending: ``acquire`` only awaits when none is.
            await semaphore.acquire()
        elif not await self._wait_for_slot(semaphore):
            await self._busy(scope, receive, send)
            return
        stats.inflight += 1
        stats.admitted += 1
        try:
            await self.app(scope, receive, send)
        finally:
            stats.inflight -= 1
            semaphore.release()

    async def _wait_for_slot(self, semaphore: asyncio.Semaphore) -> bool:
        """Queue for a slot, up to ``timeout``; False (and counted) if none came.

        Only a request that finds every slot taken comes here: ``wait_for`` wraps the wait in
        a task of its own, which the common case (a free slot) has no reason to pay for.
        """
        stats = self.stats
        stats.waiting += 1
        stats._peak_waiting = max(stats._peak_waiting, stats.waiting)
        try:
            await asyncio.wait_for(semaphore.acquire(), self.timeout)
        except TimeoutError:
            stats.rejected += 1
            return False
        finally:
            stats.waiting -= 1
        return True

    async def _busy(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            503,
            "Service busy",
            f"the server is at its limit of {self.stats.limit} requests at once; retry shortly",
            type_="/problems/unavailable",
            instance=scope["path"],
            headers={"Retry-After": str(max(1, math.ceil(self.timeout / 4)))},
        )
        await response(scope, receive, send)
