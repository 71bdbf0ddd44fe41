"""SQLite's WAL checkpoints, moved off the commit that happens to trigger them.

By default SQLite copies the write-ahead log back into the database file inside the commit
that grows the log past 1,000 pages: that transaction's caller waits while some 4 MB of pages
are written, and so does every writer of this process queued behind it at the writer gate
(``app.db.writer_gate``), which is held until the commit returns. A publish of 3,566 offers
(10k x 10k) spent ~40 ms of its ~270 ms there (``bench/publish_alone.py --database sqlite``),
and any small write that crossed the threshold paid the same.

A service process instead turns the automatic checkpoint off on its engines' connections and
checkpoints from a thread of its own, at most once per ``interval`` and only after a
transaction committed. The checkpoint is PASSIVE: it copies what no reader still needs and
never waits for, or blocks, readers or writers (a writer appends to the log while it runs).
Nothing is less durable: committed transactions are in the log either way. Other processes
on the same file (a separate ``zhuqi worker``, the CLI) keep SQLite's automatic checkpoint;
if several checkpoint at once, all but one return at once and try again later.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

from sqlalchemy import Engine, event

from app.db import sqlite_file

log = logging.getLogger(__name__)


class Checkpointer:
    """The background checkpoints of one SQLite database file; :meth:`watch` each engine of
    the process on it before its first connection."""

    def __init__(self, database: str, *, interval: float) -> None:
        self.interval = interval
        self.completed = 0  # checkpoints run (tests wait on it through ``wait_for``)
        self._connection = sqlite3.connect(database, check_same_thread=False, timeout=0)
        self._connection.isolation_level = None
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._committed = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)

    def watch(self, engine: Engine) -> None:
        """``engine``'s connections stop checkpointing in their commits; each connection's
        return to the pool wakes the checkpointer.

        The return, not the engine's ``commit`` event: that one fires before the driver
        commits, so a checkpoint it woke could run before the pages were in the log and leave
        them there until some later commit."""

        @event.listens_for(engine, "connect")
        def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

        @event.listens_for(engine.pool, "checkin")
        def _returned(_dbapi_connection: Any, _record: Any) -> None:
            self._committed.set()

    def start(self) -> None:
        self._thread.start()

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint now: (busy, frames in the log, frames checkpointed)."""
        with self._lock:
            row = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.completed += 1
            self._done.notify_all()
        busy, frames, copied = row
        return int(busy), int(frames), int(copied)

    def wait_for(self, completed: int, timeout: float) -> bool:
        """Whether ``completed`` checkpoints have run within ``timeout`` seconds."""
        with self._done:
            return self._done.wait_for(lambda: self.completed >= completed, timeout)

    def stop(self) -> None:
        """Ends the thread, then checkpoints what is committed one last time."""
        self._stopping.set()
        self._committed.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            self.checkpoint()
        except sqlite3.Error:
            log.exception("the last sqlite checkpoint failed; the next start replays the log")
        with self._lock:
            self._connection.close()

    def _run(self) -> None:
        while True:
            self._committed.wait()
            if self._stopping.is_set():
                return
            self._committed.clear()
            try:
                self.checkpoint()
            except sqlite3.Error:
                log.exception("sqlite checkpoint failed; retried after the next commit")
            self._stopping.wait(self.interval)  # commits meanwhile gather into the next one


def start_checkpointer(engine: Engine, *, interval: float) -> Checkpointer | None:
    """A running checkpointer watching ``engine``, or None where there is nothing to do:
    PostgreSQL, an in-memory database, or ``interval`` 0 (SQLite's own checkpoints, in the
    commit). Other engines of the process on the same file are :meth:`Checkpointer.watch`ed
    before their first connection."""
    database = sqlite_file(engine.url)
    if interval <= 0 or database is None:
        return None
    checkpointer = Checkpointer(database, interval=interval)
    checkpointer.watch(engine)
    checkpointer.start()
    return checkpointer
