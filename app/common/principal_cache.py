"""Who a bearer token or an API key speaks for, remembered for a few seconds per process.

Why: resolving the caller was the largest piece of every request's own work — decode and
verify the JWT, check a pooled connection out, load the ``User`` row, all in a worker-thread
hop — while a client sends the same credential again and again. With this cache a repeated
credential costs a dictionary look-up in the event loop.

What still takes effect, and when:

* **In this process, at once.** Any change to a user or an API key made through the ORM
  here — a flush that updates or deletes a ``User``/``ApiKey`` row, or a bulk ``UPDATE`` /
  ``DELETE`` of either (``change_password`` is one) — moves a process-wide *epoch*, at the
  flush and again at the commit; an entry remembered under an older epoch is never served.
  Password changes, deactivations, role or region edits and key revocations are all such
  changes. Bumping at the commit too closes the race of a reader that loaded the old row
  just before the writer committed.
* **In other processes, at the commit on PostgreSQL.** The same changes send a notice that
  every API process hears and moves its epoch for (:mod:`app.common.credential_notices`).
* **At the latest within ``ttl`` seconds.** Where no notice can come (SQLite, whose CLI is
  another process; a listener reconnecting), an entry lives at most ``ttl`` seconds
  (``ZHUQI_PRINCIPAL_CACHE_SECONDS``, 0 turns the cache off) — and never past the token's own
  expiry.

Only successful resolutions are remembered (a wrong credential is looked up every time), the
cache holds at most ``max_entries`` credentials (least recently used go first), and it is
keyed by a SHA-256 digest of the credential, so no token or key is kept in memory.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.orm import Mapper, ORMExecuteState, Session

from app.common.credential_notices import notify
from app.common.principal import Principal
from app.models import ApiKey, User

_CREDENTIAL_TABLES = (User, ApiKey)
_TOUCHED = "zhuqi_credentials_touched"
_epochs = itertools.count(1)
_epoch = 0


def credential_epoch() -> int:
    """The current epoch: it moves whenever a user or an API key changes in this process."""
    return _epoch


def _bump() -> None:
    global _epoch
    _epoch = next(_epochs)  # next() on a count is atomic under the GIL


def move_epoch() -> None:
    """Forget every cached caller of this process (another process changed a credential:
    :mod:`app.common.credential_notices`)."""
    _bump()


def _row_changed(_mapper: Mapper[Any], connection: Connection, _target: Any) -> None:
    _bump()
    notify(connection)
    session = Session.object_session(_target)
    if session is not None:
        session.info[_TOUCHED] = True


def _bulk_statement(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and any(
        m.class_ in _CREDENTIAL_TABLES for m in state.all_mappers
    ):
        _bump()
        notify(state.session.connection())
        state.session.info[_TOUCHED] = True


def _committed(session: Session) -> None:
    if session.info.pop(_TOUCHED, False):
        _bump()


def watch_credentials() -> None:
    """Move the epoch on every ORM change to users and API keys (idempotent)."""
    if event.contains(Session, "after_commit", _committed):
        return
    for model in _CREDENTIAL_TABLES:
        event.listen(model, "after_update", _row_changed)
        event.listen(model, "after_delete", _row_changed)
    event.listen(Session, "do_orm_execute", _bulk_statement)
    event.listen(Session, "after_commit", _committed)


def credential_digest(kind: str, credential: str) -> bytes:
    return hashlib.sha256(f"{kind}:{credential}".encode()).digest()


@dataclass(frozen=True)
class CachedCaller:
    principal: Principal
    api_key_id: int | None
    epoch: int
    fresh_until: float


class PrincipalCache:
    """Successful credential resolutions for ``ttl`` seconds; used from the event loop only
    (no locks: every read and write happens on the one thread that runs the loop)."""

    def __init__(
        self,
        ttl: float,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._wall_clock = wall_clock
        self._entries: OrderedDict[bytes, CachedCaller] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: bytes) -> CachedCaller | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry.epoch != _epoch or entry.fresh_until <= self._clock():
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return entry

    def put(
        self,
        digest: bytes,
        principal: Principal,
        *,
        epoch: int,
        api_key_id: int | None = None,
        expires_at: float | None = None,
    ) -> None:
        """Remember a caller resolved under ``epoch`` (read *before* the look-up started);
        ``expires_at`` (Unix seconds) is the credential's own end, never outlived."""
        if self.ttl <= 0 or epoch != _epoch:
            return
        now = self._clock()
        fresh_until = now + self.ttl
        if expires_at is not None:
            fresh_until = min(fresh_until, now + (expires_at - self._wall_clock()))
        self._entries[digest] = CachedCaller(principal, api_key_id, epoch, fresh_until)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
