"""How long the work only a worker does has been waiting: the sign of a deployment without one.

Declines are re-matched, queued runs solved and large publishes' plans prepared by a worker
(``zhuqi worker``, or the one embedded in ``zhuqi serve``). A deployment that disables the
embedded worker and starts none answers every request normally while that work piles up
unseen; so ``/readyz`` and ``/metrics`` say how old the oldest waiting item of each queue is,
and ``/readyz`` warns (it stays "ready": the API itself works) once one has waited longer than
``ZHUQI_WORKER_STALL_SECONDS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.observability.repository import oldest_waiting

WHAT_WAITS = {
    "rematch": "declined requests waiting for a re-match",
    "runs": "queued match runs",
    "plans": "published plans waiting for preparation",
}


@dataclass(frozen=True)
class Backlog:
    """Seconds the oldest item of each queue has waited (0: empty, or only future retries)."""

    oldest_seconds: dict[str, float]
    warning: str | None


def backlog(session: Session, *, stall_seconds: float, now: datetime | None = None) -> Backlog:
    moment = now or utc_now()
    ages = {
        queue: 0.0 if since is None else max(0.0, (moment - since).total_seconds())
        for queue, since in oldest_waiting(session).items()
    }
    stalled = [queue for queue, age in ages.items() if age > stall_seconds]
    warning = None
    if stalled:
        what = "; ".join(f"{WHAT_WAITS[q]} for {ages[q] / 60:.0f} min" for q in stalled)
        warning = (
            f"{what}: is a worker running? Start `zhuqi worker`, or serve with "
            "ZHUQI_EMBEDDED_WORKER=true"
        )
    return Backlog(oldest_seconds={q: round(a, 1) for q, a in ages.items()}, warning=warning)
