"""How long a failed delivery waits before its next attempt, for every outbox (webhooks and
notifications alike), so a receiver or relay back from an outage is not hit by every queued
message at once and a failing one is not hammered on every sweep."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=4)


def backoff(attempt: int, rng: Callable[[], float] = random.random) -> timedelta:
    """Wait before attempt ``attempt + 1``: 30 s doubling per attempt, capped at 4 h, with
    full jitter (a uniform share of it) so a receiver back from an outage is not hit by
    every delivery at once. Over a 26 h window that is about 15 attempts."""
    ceiling = min(FIRST_RETRY * (1 << min(max(attempt - 1, 0), 20)), LONGEST_WAIT)
    return ceiling / 2 + ceiling / 2 * rng()
