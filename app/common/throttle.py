"""Log-in and sign-up throttling, per client address and per account (moving windows).

Each attempt costs an argon2 computation (~260 ms of CPU, 64 MiB), so the limit per address
also caps the CPU an anonymous caller can burn; the limit per account stops password
guessing spread over many addresses. The counters live in this process (the ``limits``
library's memory storage): with several server processes each one limits on its own.
Below app.deps (which hands it to the log-in and sign-up endpoints), hence in app.common.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse, storage, strategies

from app.errors import TooManyRequests


class LogInThrottle:
    def __init__(self, *, per_address: str, per_account: str) -> None:
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        self._per_address = parse(per_address)
        self._per_account = parse(per_account)

    def check(self, action: str, *, address: str, account: str | None = None) -> None:
        """Count one attempt; 429 with ``Retry-After`` once a window is full."""
        self._hit(self._per_address, action, "address", address)
        if account is not None:
            self._hit(self._per_account, action, "account", account.strip().lower())

    def _hit(self, limit: RateLimitItem, action: str, kind: str, who: str) -> None:
        if self._limiter.hit(limit, action, kind, who):
            return
        reset_at, _remaining = self._limiter.get_window_stats(limit, action, kind, who)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise TooManyRequests(
            f"too many {action} attempts for this {kind}; try again in {retry_after} s",
            retry_after=retry_after,
        )
