"""A small time-to-live cache with single-flight refresh, for expensive read-only summaries.

Why: ``/stats`` reduces every request in a coordinator's regions; at province scale that is
seconds of work, and a dashboard polled by many coordinators would recompute it for each.
With this cache a key is computed at most once per ``ttl``: while it is fresh everyone gets
the stored value; when it has gone stale one caller recomputes and the others keep getting the
stale value meanwhile (no thundering herd); on a cold key the others wait for that one
computation instead of starting their own. Values carry their own ``generated_at``, so a
reader always knows how old they are. Per process, in memory: several API processes each keep
their own, which only multiplies the (bounded) refresh rate.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(frozen=True)
class _Entry(Generic[V]):
    value: V
    fresh_until: float


class TTLCache(Generic[V]):
    """``ttl <= 0`` turns caching off (every call computes)."""

    def __init__(
        self,
        ttl: float,
        *,
        max_entries: int = 512,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry[V]] = OrderedDict()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        if self.ttl <= 0:
            return compute()
        entry = self._entries.get(key)
        if entry is not None and entry.fresh_until > self._clock():
            return entry.value
        lock = self._lock_of(key)
        if entry is not None:
            if not lock.acquire(blocking=False):
                return entry.value  # someone is refreshing it: serve the stale value
        else:
            lock.acquire()  # cold: wait for the one computation under way, if any
            entry = self._entries.get(key)
            if entry is not None and entry.fresh_until > self._clock():
                lock.release()
                return entry.value
        try:
            value = compute()
            self._store(key, value)
            return value
        finally:
            lock.release()

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()

    def _lock_of(self, key: Hashable) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _store(self, key: Hashable, value: V) -> None:
        with self._guard:
            self._entries[key] = _Entry(value, self._clock() + self.ttl)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                old_key, _ = self._entries.popitem(last=False)
                self._locks.pop(old_key, None)
