"""The worker threads of the request path: a synchronous endpoint with its commit
(``OneHopRoute``) and a principal look-up run here, one hand-off each.

Why not ``anyio.to_thread.run_sync``: each of its calls takes a capacity-limiter token, enters
a cancel scope and yields to the event loop twice (a checkpoint, then the limiter's), and its
workers wait on a ``queue.Queue`` (a Python condition variable). Every yield resumes the
request's whole chain of middleware coroutines. Measured on uvloop with four clients, a
trivial call cost ~35 µs of CPU through anyio and ~5 µs here (``ThreadPoolExecutor`` with
``run_in_executor``: ~18 µs); on ``/api/v1/users/me`` that is one hop in every request.

What is kept from anyio:

- the bound: at most ``size`` threads (the ``request_threads`` setting, applied by the app's
  lifespan), calls beyond it wait in the queue, in order; app/admission.py keeps admitted
  requests <= threads, so an admitted request never waits for one;
- the context: each call runs in a copy of the caller's ``contextvars`` context, so the
  request id bound to the logs reaches the lines written in the thread;
- no abandoning: a caller cancelled while its call runs (a client that hung up, a shutdown)
  waits for the call to finish, shielded, before the cancellation goes on, as anyio's
  ``abandon_on_cancel=False`` does; the endpoint's commit is never cut off halfway, and the
  request's transaction is ended (``app.deps.end_request_transaction``) only once no thread
  uses its session;
- an exception raised in the thread reaches the caller with its traceback.

The threads are daemons, started on demand: an interpreter exits without waiting for them,
and ``close`` (the lifespan's end) lets the idle ones go.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from contextlib import suppress
from contextvars import Context, copy_context
from queue import SimpleQueue
from typing import Any, Generic, TypeVar

from anyio import CancelScope

T = TypeVar("T")


class _Call(Generic[T]):
    """One call: made in a thread, settled in the caller's event loop."""

    __slots__ = ("args", "context", "finished", "func", "loop", "outcome")

    def __init__(
        self, func: Callable[..., T], args: tuple[Any, ...], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.func = func
        self.args = args
        self.context: Context = copy_context()
        self.loop = loop
        self.outcome: asyncio.Future[T] = loop.create_future()
        self.finished = False

    def run(self) -> None:
        """In a worker thread: call, then hand the outcome to the loop (which wakes it)."""
        try:
            result = self.context.run(self.func, *self.args)
        except BaseException as exc:
            self._report(None, exc)
        else:
            self._report(result, None)

    def _report(self, result: T | None, exc: BaseException | None) -> None:
        try:
            self.loop.call_soon_threadsafe(self._settle, result, exc)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            if not self.loop.is_closed():
                raise

    def _settle(self, result: T | None, exc: BaseException | None) -> None:
        """In the loop. ``outcome`` is cancelled only if the caller was (see ``RequestThreads.run``)."""
        self.finished = True
        if self.outcome.done():
            return
        if exc is None:
            self.outcome.set_result(result)  # type: ignore[arg-type]
        elif isinstance(exc, StopIteration):  # a future cannot hold one (as in anyio)
            error = RuntimeError("the call raised StopIteration")
            error.__cause__ = exc
            self.outcome.set_exception(error)
        else:
            self.outcome.set_exception(exc)


class RequestThreads:
    """At most ``size`` daemon threads running calls from one queue (module doc)."""

    def __init__(self, size: int, *, name: str = "zhuqi-request") -> None:
        self._calls: SimpleQueue[_Call[Any] | None] = SimpleQueue()
        self._size = size
        self._started = 0
        self._name = name
        self._lock = threading.Lock()  # loops of several threads (tests) may start workers

    @property
    def size(self) -> int:
        return self._size

    def resize(self, size: int) -> None:
        """Bound the threads to ``size``; threads past it leave once idle."""
        with self._lock:
            for _ in range(self._started - size):
                self._calls.put(None)
            self._started = min(self._started, size)
            self._size = size

    def close(self) -> None:
        """Let every thread go once idle (a later call starts new ones)."""
        size = self._size
        self.resize(0)
        self._size = size

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` in a worker thread, in a copy of this context; not abandoned if the
        caller is cancelled meanwhile: the cancellation is raised once the call is over."""
        call = _Call(func, args, asyncio.get_running_loop())
        if self._started < self._size:
            self._start_one()
        self._calls.put(call)
        try:
            return await call.outcome
        except asyncio.CancelledError:
            if call.outcome.cancelled() and not call.finished:
                await _outlast(call)
            raise

    def _start_one(self) -> None:
        with self._lock:
            if self._started >= self._size:
                return
            self._started += 1
            threading.Thread(
                target=_serve,
                args=(self._calls,),
                name=f"{self._name}-{self._started}",
                daemon=True,
            ).start()


async def _outlast(call: _Call[Any]) -> None:
    """Wait for a call whose caller was cancelled, shielded from anyio's cancel scopes, and
    through any further ``Task.cancel``; its outcome is dropped (the cancellation wins)."""
    with CancelScope(shield=True):
        while not call.finished:
            call.outcome = call.loop.create_future()
            with suppress(Exception, asyncio.CancelledError):
                await call.outcome


def _serve(calls: SimpleQueue[_Call[Any] | None]) -> None:
    while (call := calls.get()) is not None:
        call.run()


request_threads = RequestThreads(40)
"""The process's request threads; the app's lifespan sizes them (``request_threads``)."""
