"""API keys' ``last_used_at``, recorded without turning a read into a write.

A GET authenticated by a key only notes the time in memory; the notes are written in one
batched statement of their own short transaction, at most every few seconds (or at shutdown).
On SQLite a write inside the GET's read transaction failed with "database is locked" as soon
as anyone else committed; here a failed batch is logged and kept for the next one, and the
request that triggered it never sees the failure. Below app.deps (which notes each key's
use as it resolves the caller), hence in app.common.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import bindparam, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.models import ApiKey

logger = logging.getLogger(__name__)
WriteScope = Callable[[], AbstractContextManager[Session]]


class ApiKeyUsage:
    def __init__(self, *, flush_seconds: float) -> None:
        self._flush_seconds = flush_seconds
        self._pending: dict[int, datetime] = {}
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._last_flush = time.monotonic()

    def touch(self, key_id: int, when: datetime) -> None:
        with self._lock:
            self._pending[key_id] = max(when, self._pending.get(key_id, when))

    def due(self) -> bool:
        with self._lock:
            waited = time.monotonic() - self._last_flush
            return bool(self._pending) and waited >= self._flush_seconds

    def flush_soon(self, write: WriteScope) -> None:
        """Write due notes: inline when the interval is 0 (tests), else on a short thread."""
        if not self.due():
            return
        if self._flush_seconds == 0:
            self.flush(write)
        else:
            threading.Thread(target=self.flush, args=(write,), daemon=True).start()

    def flush(self, write: WriteScope) -> int:
        """Write every pending note in one statement; returns how many keys were written."""
        if not self._flushing.acquire(blocking=False):
            return 0  # another thread is writing; the notes wait for the next batch
        try:
            with self._lock:
                batch, self._pending = self._pending, {}
                self._last_flush = time.monotonic()
            if not batch:
                return 0
            try:
                with write() as session:
                    _write(session, batch)
            except SQLAlchemyError:
                logger.warning("could not record API key use; retrying later", exc_info=True)
                for key_id, when in batch.items():
                    self.touch(key_id, when)
                return 0
            return len(batch)
        finally:
            self._flushing.release()


def _write(session: Session, batch: dict[int, datetime]) -> None:
    statement = (
        update(ApiKey)
        .where(ApiKey.id == bindparam("key_id"))
        .values(last_used_at=bindparam("used_at", type_=ApiKey.last_used_at.type))
    )
    rows = [{"key_id": key_id, "used_at": when} for key_id, when in batch.items()]
    session.connection().execute(statement, rows)
