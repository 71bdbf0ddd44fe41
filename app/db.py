"""Engine and session wiring for the two supported databases.

SQLite: Python 3.11's sqlite3 module does not emit BEGIN for SELECT or DDL, which breaks
SAVEPOINT and isolation. We follow SQLAlchemy's documented pysqlite recipe: turn the driver's
transaction handling off and emit ``BEGIN IMMEDIATE`` ourselves, so writers serialise at the
start of a transaction instead of failing half-way with "database is locked".
"""

from __future__ import annotations

import select
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import (
    URL,
    CursorResult,
    Delete,
    Engine,
    Update,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from app.sqlfuncs import register_sqlite_functions

SQLITE_BUSY_TIMEOUT_MS = 30_000
NETWORK_TIMEOUT_MS = 10_000  # a PostgreSQL server that stops answering, noticed within this
# session.info key of sessions that must not write (``make_session_factory(read_only=True)``).
READ_ONLY = "zhuqi_read_only"


def make_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 10,
    pool_timeout: float = 30.0,
    statement_timeout_ms: int | None = None,
    network_timeout_ms: int = NETWORK_TIMEOUT_MS,
) -> Engine:
    """An engine for either database.

    ``max_overflow`` equals ``pool_size``: the admission limit (app/admission.py) keeps one
    connection per admitted request inside ``pool_size``, and the overflow is headroom for the
    rare request that needs a second connection, so a burst can never take every connection.
    ``statement_timeout_ms`` bounds a statement on PostgreSQL and a lock wait on SQLite; the
    request path sets it so a held lock gives a quick 503 instead of a hung pool. Background
    work (runs, sweeps, seed) leaves it unset.

    ``network_timeout_ms`` bounds how long a PostgreSQL server that vanished without a word
    (a host powered off, a network cut: no FIN, no RST) can hold a connection: see
    :func:`network_args`.
    """
    if url.startswith("sqlite"):
        busy_ms = statement_timeout_ms or SQLITE_BUSY_TIMEOUT_MS
        in_memory = sqlite_file(make_url(url)) is None
        pool_args: dict[str, Any] = (
            {}
            if in_memory
            else {"pool_size": pool_size, "max_overflow": pool_size, "pool_timeout": pool_timeout}
        )
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": busy_ms / 1000},
            **pool_args,
        )
        _install_sqlite_recipe(engine, busy_timeout_ms=busy_ms)
        return engine
    connect_args: dict[str, Any] = {"connect_timeout": 10} | network_args(network_timeout_ms)
    if make_url(url).get_driver_name() == "psycopg":
        from app.pg_cursor import DescribedCursor  # psycopg is the postgres extra's

        connect_args["cursor_factory"] = DescribedCursor
    if statement_timeout_ms is not None:
        connect_args["options"] = f"-c statement_timeout={statement_timeout_ms}"
    engine = create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        connect_args=connect_args,
        isolation_level="AUTOCOMMIT",
    )
    event.listen(engine, "checkout", _refuse_a_closed_connection)
    # Set on this engine's dialect alone; its reader (same pool) keeps its own, which sends nothing.
    engine.dialect.do_begin = _begin_explicitly  # type: ignore[method-assign]
    _add_reader(engine, None)
    return engine


_PGRES_COMMAND_OK = 1  # libpq's ExecStatusType of a command that returned no rows
# An engine of ``make_engine`` → the engine its read-only sessions run on: the same pool,
# another dialect, whose ``do_begin`` begins as a reader does (``reader_of``).
_READERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _begin_explicitly(dbapi_connection: Any) -> None:
    """``Dialect.do_begin`` of a PostgreSQL engine of ``make_engine``: send BEGIN.

    Why the pool's connections stay in autocommit, with BEGIN sent here for a transaction:
    a read of the request path (``make_session_factory(statement_reads=True)``) runs each
    statement on its own, and it used to get there by switching its connection to
    autocommit with the ``isolation_level`` execution option. That switch, and the switch
    back when the connection returned to the pool, cost about 0.1 ms of CPU a request, and
    the option's connect hook made SQLAlchemy dispatch its connection events around every
    statement of the read (about 35 µs each). Now the readers' engine (the same pool,
    another dialect, whose ``do_begin`` sends nothing) simply never begins, and this engine
    begins on its own; measured in process (``bench/inprocess_cpu.py``), lists cost 14-19%
    less CPU, single reads 0-4% and writes 9-21% (docs/benchmarks.md, session 19). psycopg
    commits or rolls back whatever the connection is in (``COMMIT``/``ROLLBACK`` when a
    transaction is open), so the end of a transaction is unchanged.

    A connection whose isolation was asked for by an execution option gets no BEGIN here:
    at another level the driver is out of autocommit and begins implicitly, as before, and
    one asked for ``AUTOCOMMIT`` (``VACUUM``, ``CREATE DATABASE``) must not be in a
    transaction. SQLAlchemy records such an option as a callback that resets it when the
    connection returns to the pool.
    """
    if not dbapi_connection.autocommit or dbapi_connection._connection_record.finalize_callback:
        return
    # libpq's own call (the GIL released while it waits): a psycopg cursor for one word cost
    # more CPU than the implicit BEGIN it replaces.
    result = dbapi_connection.driver_connection.pgconn.exec_(b"BEGIN")
    if result.status != _PGRES_COMMAND_OK:
        import psycopg  # the driver in use: raised as its own, SQLAlchemy sees a lost connection

        message = (result.error_message or b"").decode(errors="replace")
        raise psycopg.OperationalError(f"BEGIN failed: {message}".strip())


def _add_reader(engine: Engine, begin: Callable[[Any], None] | None) -> None:
    """Make ``engine``'s reader (``reader_of``): an engine over the same pool whose dialect, a
    separate instance, begins with ``begin`` (None: the dialect's own, which sends nothing).
    Made before ``engine``'s first connection, so the reader's dialect is initialised by it."""
    reader = create_engine(engine.url, echo=engine.echo, pool=engine.pool)
    if begin is not None:
        reader.dialect.do_begin = begin  # type: ignore[method-assign,assignment]
    _READERS[engine] = reader


def reader_of(engine: Engine) -> Engine:
    """The engine of ``engine``'s read-only sessions (``make_session_factory``): on
    PostgreSQL its transactions send no BEGIN, so a statement read runs each statement on
    its own; on SQLite they begin DEFERRED, beside a writer instead of behind it. The same
    pool as ``engine``: no connection more. ``engine`` itself when it is not one of
    ``make_engine``'s."""
    return _READERS.get(engine, engine)


def network_args(timeout_ms: int) -> dict[str, Any]:
    """libpq's TCP settings that turn a silent server into an error within ``timeout_ms``.

    Without them a statement sent to a server that vanished waited for the kernel to give up
    retransmitting, about 15 minutes on Linux: every request thread that touched the database
    hung, and ``statement_timeout`` could not help (the server enforces it). With
    ``tcp_user_timeout`` the kernel drops a connection whose sent data stays unacknowledged
    that long, so the statement fails with ``OperationalError`` (answered 503); keepalive
    probes do the same for a connection waiting on a long statement, or idle in the pool,
    whose server has gone (the socket then reports an error, and the checkout check below
    discards it). A live server acknowledges at once, however long its statements run.
    """
    seconds = max(1, timeout_ms // 1000)
    return {
        "keepalives": 1,
        "keepalives_idle": seconds,
        "keepalives_interval": max(1, seconds // 3),
        "keepalives_count": 3,
        "tcp_user_timeout": timeout_ms,
    }


def _refuse_a_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pessimistic disconnect handling without ``pool_pre_ping``'s ``SELECT 1`` round trip.

    A pooled connection sits idle, outside any transaction, so the server has nothing to say
    to it: if its socket is readable, the server has ended the session (a terminated backend,
    a restart, an idle timeout send their FATAL message and close). Polling the socket costs
    microseconds where the ping cost a round trip on every request (~7 % of a cheap request's
    active samples). Raising ``DisconnectionError`` here is SQLAlchemy's documented way to have
    the pool discard the connection and check out a fresh one. A peer that vanished without a
    word (no FIN) is caught once the keepalive probes fail (:func:`network_args`); before
    that, its first statement fails within the network timeout instead of hanging.
    """
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError("the pooled connection is closed")
    if _readable(dbapi_connection.fileno()):
        raise DisconnectionError("the server ended the pooled connection's session")


def _readable(fd: int) -> bool:
    """Without waiting. ``poll`` has no descriptor limit; Windows has only ``select``."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)


# database file → the gate its writers pass in this process (every engine on the file shares it)
_WRITER_GATES: dict[str, threading.Lock] = {}
_WRITER_GATES_GUARD = threading.Lock()
HOLDS_WRITER_GATE = "zhuqi_holds_writer_gate"  # key in a pooled connection's ``info``


def writer_gate(database: str) -> threading.Lock:
    """The in-process gate of one SQLite file's writers.

    SQLite lets one writer in at a time; the others wait in its busy handler, which sleeps
    and retries (1, 2, 5 … then 100 ms at a time) and lets a newcomer barge in ahead of a
    long waiter. Under load, writes waited seconds for a lock that was free most of the
    time. Writers of this process queue on this lock instead, and the one that holds it is
    handed the SQLite lock at once; the busy handler still arbitrates between processes.
    """
    with _WRITER_GATES_GUARD:
        return _WRITER_GATES.setdefault(database, threading.Lock())


def _release_writer_gate(info: dict[Any, Any], gate: threading.Lock) -> None:
    if info.pop(HOLDS_WRITER_GATE, False):
        gate.release()


def sqlite_file(url: URL) -> str | None:
    """The database file of a SQLite URL; None for an in-memory database or another backend
    (no file: no WAL, no writer gate, no checkpoints)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return url.database


def _install_sqlite_recipe(engine: Engine, *, busy_timeout_ms: int) -> None:
    """SQLAlchemy's pysqlite recipe: the driver's own transaction handling off, BEGIN sent here.

    A writer begins IMMEDIATE (after this process's writer gate) and a reader DEFERRED, each
    by its own engine's dialect (``do_begin``; the reader's engine shares the pool,
    ``reader_of``), not by ``begin``/``commit`` connection events: any such event makes
    SQLAlchemy dispatch its connection events around every statement of the engine, about
    35 µs each.
    """
    database = sqlite_file(engine.url)
    gate = writer_gate(database) if database is not None else None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        if database is not None:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        register_sqlite_functions(dbapi_connection)

    dialect = engine.dialect
    if gate is None:
        dialect.do_begin = _begin_immediate  # type: ignore[method-assign]
    else:
        timeout = busy_timeout_ms / 1000
        dialect.do_begin = partial(_begin_behind_gate, gate, timeout)  # type: ignore[method-assign]
        dialect.do_commit = partial(_then_open_gate, dialect.do_commit, gate)  # type: ignore[method-assign]
        dialect.do_rollback = partial(_then_open_gate, dialect.do_rollback, gate)  # type: ignore[method-assign]

        @event.listens_for(engine.pool, "checkin")
        @event.listens_for(engine.pool, "invalidate")
        def _on_return(_dbapi_connection: Any, record: Any, *_rest: Any) -> None:
            if record is not None:
                _release_writer_gate(record.info, gate)

    _add_reader(engine, _begin_deferred)


def _begin_deferred(dbapi_connection: Any) -> None:
    dbapi_connection.execute("BEGIN DEFERRED")


def _begin_immediate(dbapi_connection: Any) -> None:
    dbapi_connection.execute("BEGIN IMMEDIATE")


def _begin_behind_gate(gate: threading.Lock, timeout: float, dbapi_connection: Any) -> None:
    """BEGIN IMMEDIATE once this process's writers' gate is ours (``writer_gate``)."""
    if not gate.acquire(timeout=timeout):
        raise sqlite3.OperationalError("database is locked (this process's writers queue)")
    info = dbapi_connection.info
    info[HOLDS_WRITER_GATE] = True
    try:
        _begin_immediate(dbapi_connection)
    except BaseException:
        _release_writer_gate(info, gate)
        raise


def _then_open_gate(
    end: Callable[[Any], None], gate: threading.Lock, dbapi_connection: Any
) -> None:
    """COMMIT or ROLLBACK, then the gate for the next writer, whatever the end said."""
    try:
        end(dbapi_connection)
    finally:
        try:
            info = dbapi_connection.info
        except NotImplementedError:  # the dialect's first-connect reset: no pooled connection yet
            info = None
        if info is not None:
            _release_writer_gate(info, gate)


def make_session_factory(
    engine: Engine, *, read_only: bool = False, statement_reads: bool = False
) -> sessionmaker[Session]:
    """``expire_on_commit=False``: responses are serialised from objects after the commit.

    ``read_only`` sessions run on the engine's reader (``reader_of``): on SQLite their
    transactions begin DEFERRED, so reads under WAL run beside a writer instead of queueing
    behind it; on PostgreSQL ``read_only`` alone changes nothing.

    ``statement_reads`` (with ``read_only``; the request path's reads): on PostgreSQL the
    session runs each statement on its own, in autocommit (the reader sends no BEGIN), instead
    of inside BEGIN ... COMMIT.
    Those were two of a GET's four round trips (ping, BEGIN, SELECT, COMMIT), each costing
    the server about as much client-side work as the query itself. Nothing is lost: at READ
    COMMITTED, PostgreSQL's level here, every statement of a transaction takes its own
    snapshot anyway, so a transaction gave a read no consistency between its statements
    (a list's total and its page are two statements either way). Where one picture matters
    the code asks for it (the match runner's REPEATABLE READ snapshot, on its own factory).
    Such sessions refuse to write, on both databases (``guard_read_only_sessions``): a write
    there would commit statement by statement. SQLite keeps its deferred transaction, which
    costs no round trip and gives the read one WAL snapshot.
    """
    bind = engine
    if read_only and (statement_reads or engine.dialect.name == "sqlite"):
        bind = reader_of(engine)
        if bind is engine and statement_reads and engine.dialect.name == "postgresql":
            bind = engine.execution_options(isolation_level="AUTOCOMMIT")  # not make_engine's
    return sessionmaker(
        bind=bind,
        expire_on_commit=False,
        autoflush=False,
        info={READ_ONLY: True} if read_only and statement_reads else None,
    )


class ReadOnlySessionError(RuntimeError):
    """A read session was asked to write: a bug in the code path, never the client's fault."""


def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(READ_ONLY):
        raise ReadOnlySessionError("a read-only session (a GET's) cannot flush changes")


def _refuse_dml(state: ORMExecuteState) -> None:
    if state.session.info.get(READ_ONLY) and (
        state.is_insert or state.is_update or state.is_delete
    ):
        raise ReadOnlySessionError("a read-only session (a GET's) cannot run INSERT/UPDATE/DELETE")


def guard_read_only_sessions() -> None:
    """Make every session marked ``READ_ONLY`` in its ``info`` refuse ORM flushes and DML
    statements (idempotent). A GET's session is one: reads must never write."""
    for name, listener in (("before_flush", _refuse_flush), ("do_orm_execute", _refuse_dml)):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


def rows_matched(session: Session, statement: Update | Delete) -> int:
    """Run a bulk UPDATE or DELETE (no RETURNING) and say how many rows its WHERE matched.

    The count is what every compare-and-set here decides on. ``Session.execute`` is typed to
    return a plain ``Result`` (SQLAlchemy cannot promise a cursor for every statement and
    option); for these statements it is a ``CursorResult``, and this checks it once instead of
    each caller silencing the type checker.
    """
    result = session.execute(statement)
    if not isinstance(result, CursorResult):  # pragma: no cover - SQLAlchemy's contract
        raise TypeError(f"{type(statement).__name__} gave no cursor result, hence no row count")
    return result.rowcount


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit if the block finishes, roll back if it raises."""
    with factory() as session, session.begin():
        yield session


@dataclass(frozen=True)
class SessionScopes:
    """Short transactions of their own, opened and closed in the caller's thread.

    For endpoints that must do slow CPU work (argon2) *between* database steps: read what is
    needed, close, compute with no transaction open, then write in a short transaction. On
    SQLite that keeps ``BEGIN IMMEDIATE`` (the one write lock) off the slow part.
    """

    read: Callable[[], AbstractContextManager[Session]]
    write: Callable[[], AbstractContextManager[Session]]
