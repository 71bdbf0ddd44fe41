"""The summary cache: fresh values reused, one refresh at a time, stale served meanwhile."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from app.common.cache import TTLCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_fresh_value_is_reused_and_a_stale_one_recomputed() -> None:
    clock = Clock()
    cache: TTLCache[int] = TTLCache(10, clock=clock)
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get_or_compute("k", compute) == 1
    clock.now = 9.9
    assert cache.get_or_compute("k", compute) == 1
    clock.now = 10.1
    assert cache.get_or_compute("k", compute) == 2
    assert cache.get_or_compute("other", compute) == 3


def test_ttl_zero_computes_every_time() -> None:
    cache: TTLCache[int] = TTLCache(0)
    values = iter(range(10))
    assert [cache.get_or_compute("k", lambda: next(values)) for _ in range(3)] == [0, 1, 2]


def test_while_one_caller_refreshes_a_stale_key_the_others_get_the_stale_value() -> None:
    clock = Clock()
    cache: TTLCache[str] = TTLCache(5, clock=clock)
    cache.get_or_compute("k", lambda: "old")
    clock.now = 6
    started, release = threading.Event(), threading.Event()

    def slow_refresh() -> str:
        started.set()
        release.wait(30)
        return "new"

    with ThreadPoolExecutor(max_workers=1) as pool:
        refreshing = pool.submit(cache.get_or_compute, "k", slow_refresh)
        started.wait(30)
        during = [cache.get_or_compute("k", lambda: "should not run") for _ in range(5)]
        release.set()
        assert refreshing.result() == "new"
    assert during == ["old"] * 5
    assert cache.get_or_compute("k", lambda: "should not run") == "new"


def test_a_cold_key_is_computed_once_for_concurrent_callers() -> None:
    cache: TTLCache[int] = TTLCache(60)
    calls: list[int] = []
    gate = threading.Barrier(8)
    lock = threading.Lock()

    def compute() -> int:
        with lock:
            calls.append(1)
        return 42

    def ask(_: int) -> int:
        gate.wait(30)
        return cache.get_or_compute("k", compute)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(ask, range(8)))
    assert results == [42] * 8
    assert len(calls) == 1


def test_the_oldest_entries_are_evicted_past_the_bound() -> None:
    cache: TTLCache[int] = TTLCache(60, max_entries=2)
    for key in ("a", "b", "c"):
        cache.get_or_compute(key, lambda: 1)
    recomputed: list[str] = []

    def recompute(key: str) -> int:
        recomputed.append(key)
        return 2

    cache.get_or_compute("a", lambda: recompute("a"))
    cache.get_or_compute("c", lambda: recompute("c"))
    assert recomputed == ["a"]
