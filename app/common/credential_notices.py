"""Credential changes heard across processes (PostgreSQL): a change to a user or an API key
ends what every API process has cached for it at the change's commit, not ``ttl`` later.

Why: several API processes (and the CLI and the workers) share one database, and each keeps
its own principal cache (:mod:`app.common.principal_cache`). A deactivation, a revoked key or
a narrowed region made in one process reached the others only when their cached entries aged
out (``ZHUQI_PRINCIPAL_CACHE_SECONDS``): a deactivated user could go on for seconds.

How: the transaction that changes a ``User`` or ``ApiKey`` row through the ORM also sends
``NOTIFY zhuqi_credentials``, which PostgreSQL delivers at its commit and drops if it rolls
back. Each API process keeps one connection of its own (outside the pool) that LISTENs on the
channel, and moves its epoch on every notice; a cached caller from before is then looked up
again. A connection lost (the server restarted, the network gone: libpq's keepalives tell)
is opened again after ``retry_seconds``, and the epoch moves on reconnecting, since a notice
sent meanwhile was missed; until then the TTL still bounds what is served.

SQLite has no such channel and needs none in the usual set-up: one process serves it, the
embedded worker shares that process's epoch. A change made there by another process (the
CLI) still takes up to the TTL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import Connection, Engine

from app.db import NETWORK_TIMEOUT_MS, network_args

logger = logging.getLogger(__name__)

CHANNEL = "zhuqi_credentials"


def notify(connection: Connection) -> None:
    """Tell the other processes, at this transaction's commit (PostgreSQL; a no-op else).
    Several notices of one transaction reach a listener as one."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"NOTIFY {CHANNEL}")


class CredentialListener:
    """The listening thread of one process (a daemon: it never holds the process's exit)."""

    def __init__(
        self,
        engine: Engine,
        on_notice: Callable[[], None],
        *,
        retry_seconds: float = 1.0,
        poll_seconds: float = 1.0,
        network_timeout_ms: int = NETWORK_TIMEOUT_MS,
    ) -> None:
        self.engine = engine
        self.on_notice = on_notice
        self.retry_seconds = retry_seconds
        self.poll_seconds = poll_seconds
        self.network_timeout_ms = network_timeout_ms
        self.stopping = threading.Event()
        self.listening = threading.Event()  # set while LISTEN is in force
        self.thread = threading.Thread(target=self._run, name="credential-notices", daemon=True)

    def start(self) -> CredentialListener:
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self.thread.join(timeout)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._listen()
            except Exception:  # the connection is gone: the next one makes up for it
                logger.warning(
                    "credential notices: connection lost, listening again", exc_info=True
                )
            self.listening.clear()
            self.stopping.wait(self.retry_seconds)

    def _listen(self) -> None:
        cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
        params = dict(cparams) | network_args(self.network_timeout_ms) | {"connect_timeout": 10}
        with psycopg.connect(*cargs, **params, autocommit=True) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self.on_notice()  # whatever was sent while no one listened is missed: start over
            self.listening.set()
            while not self.stopping.is_set():
                for _ in connection.notifies(timeout=self.poll_seconds):
                    self.on_notice()
