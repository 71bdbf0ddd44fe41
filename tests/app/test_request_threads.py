"""The request path's worker threads (app/common/threads.py) keep what anyio's ``run_sync``
gave it: the caller's context, the thread bound, no abandoned calls, exceptions with their
tracebacks."""

from __future__ import annotations

import asyncio
import threading
import traceback
from collections.abc import Iterator
from contextvars import ContextVar

import anyio
import pytest

from app.common.threads import RequestThreads

marker: ContextVar[str] = ContextVar("marker", default="unset")


@pytest.fixture
def threads() -> Iterator[RequestThreads]:
    pool = RequestThreads(2, name="test-request")
    try:
        yield pool
    finally:
        pool.close()


def test_the_call_sees_the_callers_context_and_cannot_change_it(threads: RequestThreads) -> None:
    def read_then_set() -> str:
        seen = marker.get()
        marker.set("set in the thread")
        return seen

    async def caller() -> tuple[str, str]:
        marker.set("request-1")
        return await threads.run(read_then_set), marker.get()

    assert asyncio.run(caller()) == ("request-1", "request-1")


def test_an_exception_reaches_the_caller_with_its_traceback(threads: RequestThreads) -> None:
    def fail_in_the_thread() -> None:
        raise ValueError("from the thread")

    with pytest.raises(ValueError, match="from the thread") as raised:
        asyncio.run(threads.run(fail_in_the_thread))
    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert "fail_in_the_thread" in frames


def test_stop_iteration_becomes_a_runtime_error(threads: RequestThreads) -> None:
    def stop() -> None:
        raise StopIteration

    with pytest.raises(RuntimeError, match="StopIteration"):
        asyncio.run(threads.run(stop))


def test_no_more_calls_run_at_once_than_threads(threads: RequestThreads) -> None:
    lock = threading.Lock()
    running = [0, 0]  # now, most

    def hold() -> None:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        threading.Event().wait(0.05)
        with lock:
            running[0] -= 1

    async def burst() -> None:
        await asyncio.gather(*(threads.run(hold) for _ in range(6)))

    asyncio.run(burst())
    assert running[1] == 2


class TestACancelledCallerWaitsForItsCall:
    """A client that hangs up must not leave its endpoint's session used by a thread while the
    request ends its transaction: the caller is held until the call is over, then cancelled."""

    def test_task_cancel_even_repeated(self, threads: RequestThreads) -> None:
        release, started = threading.Event(), threading.Event()
        finished: list[str] = []

        def slow() -> str:
            started.set()
            release.wait(5)
            finished.append("call")
            return "done"

        async def scenario() -> None:
            task = asyncio.create_task(threads.run(slow))
            await asyncio.to_thread(started.wait, 5)
            for _ in range(3):
                task.cancel()
                await asyncio.sleep(0.02)
                assert not task.done()
            release.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert finished == ["call"]

        asyncio.run(scenario())

    def test_an_anyio_cancel_scope(self, threads: RequestThreads) -> None:
        release, started = threading.Event(), threading.Event()
        finished: list[str] = []

        def slow() -> None:
            started.set()
            release.wait(5)
            finished.append("call")

        async def scenario() -> None:
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as group:
                    group.start_soon(threads.run, slow)
                    await anyio.to_thread.run_sync(started.wait, 5)
                    scope.cancel()
                    threading.Timer(0.1, release.set).start()
            assert finished == ["call"]

        asyncio.run(scenario())


def test_closed_threads_leave_and_a_later_call_starts_new_ones() -> None:
    pool = RequestThreads(3, name="test-closing")

    def mine() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("test-closing")]

    async def three_at_once() -> None:
        await asyncio.gather(*(pool.run(threading.Event().wait, 0.02) for _ in range(3)))

    asyncio.run(three_at_once())
    assert len(mine()) == 3
    pool.close()
    for thread in mine():
        thread.join(5)
    assert mine() == []
    assert asyncio.run(pool.run(lambda: "again")) == "again"
    pool.close()


def test_calls_waiting_for_a_thread_are_served_after_a_close() -> None:
    pool = RequestThreads(1, name="test-backlog")
    release, started = threading.Event(), threading.Event()

    def first() -> str:
        started.set()
        release.wait(5)
        return "first"

    async def scenario() -> list[str]:
        calls = asyncio.gather(pool.run(first), pool.run(lambda: "second"))
        await asyncio.to_thread(started.wait, 5)
        pool.close()  # the busy thread would leave after its call; the second still waits
        release.set()
        return list(await asyncio.wait_for(calls, 5))

    assert asyncio.run(scenario()) == ["first", "second"]
    pool.close()
