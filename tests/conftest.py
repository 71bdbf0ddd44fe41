"""Test wiring shared by every test that touches a database.

Every database test runs twice: on an SQLite file and on a real PostgreSQL (a fresh database
created for the session on 127.0.0.1:5432). Both are built by running the Alembic
migrations, never ``create_all``. Each test gets its own connection and an outer transaction
that is rolled back, with the ORM session joined through savepoints, so commits inside the
code under test are real but leave nothing behind.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.db import READ_ONLY, SessionScopes, make_engine
from app.deps import (
    COMMITTED_IN_ENDPOINT,
    READ_METHODS,
    REQUEST_SESSION,
    get_db,
    get_db_yielding,
)
from app.main import create_app
from app.migrate import upgrade
from app.settings import Settings, get_settings

# Test data, not a State Council notice: the fixed-date holidays, no Spring Festival.
_STAND_IN_HOLIDAYS = """
[{year}]
holidays = ["{year}-01-01", "{year}-05-01..{year}-05-03", "{year}-10-01..{year}-10-07"]
"""


def _stand_in_calendar_for_this_year() -> None:
    """Once the real date passes the last year chinese-calendar knows, every working-day
    clock computed from "now" answers 503 until the operator supplies the year
    (``ZHUQI_HOLIDAY_FILE``). The suite tests the logic, not the calendar's edition: it
    supplies a stand-in for the current year only when the package does not know it (so
    this changes nothing while it does). Tests that are about the packaged calendar's
    edge use :func:`packaged_calendar_only`."""
    if "ZHUQI_HOLIDAY_FILE" in os.environ:
        return
    year = datetime.now(ZoneInfo("Asia/Shanghai")).year
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
        return
    except NotImplementedError:
        pass
    path = Path(tempfile.gettempdir()) / f"zhuqi-test-holidays-{year}-{os.getpid()}.toml"
    path.write_text(_STAND_IN_HOLIDAYS.format(year=year), encoding="utf-8")
    os.environ["ZHUQI_HOLIDAY_FILE"] = str(path)  # read by settings here and in live servers


_stand_in_calendar_for_this_year()


@pytest.fixture
def packaged_calendar_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Working days from chinese-calendar alone, whatever today's date supplied."""
    monkeypatch.delenv("ZHUQI_HOLIDAY_FILE", raising=False)
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


PG_SERVER = os.environ.get("ZHUQI_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


def _pg_admin_engine() -> Engine:
    return create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")


def _postgres_available() -> str | None:
    """None when the server answers, else the reason it does not."""
    try:
        engine = _pg_admin_engine()
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0]
    return None


def require_postgres() -> None:
    reason = _postgres_available()
    if reason is None:
        return
    message = f"PostgreSQL at {PG_SERVER} does not answer: {reason}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (CI=true: PostgreSQL tests must run)")
    pytest.skip(message)


def fresh_postgres_database() -> tuple[str, Callable[[], None]]:
    name = f"zhuqi_test_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return f"{PG_SERVER}/{name}", drop


@pytest.fixture(scope="session")
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, empty database of the requested backend, dropped at the end of the session."""
    backend = request.param
    if backend == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "zhuqi.db"
        yield f"sqlite:///{path}"
        return
    require_postgres()
    url, drop = fresh_postgres_database()
    try:
        yield url
    finally:
        drop()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(url=database_url)
    yield engine
    engine.dispose()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The few tests that take minutes go first: handed out last, a parallel run would end
    with one worker busy on them and the other idle. Runs after pytest has grouped the items
    by database (a stable sort keeps that grouping within each part)."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that needs a database runs on both backends."""
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize(
            "database_url", ["sqlite", "postgresql"], indirect=True, scope="session"
        )


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    connection = engine.connect()
    outer = connection.begin()
    session = Session(
        bind=connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
    )
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def settings() -> Settings:
    # Summaries computed fresh on every call: tests read their own writes at once.
    return Settings(
        environment="test",
        secret_key=TEST_SECRET,
        database_url="sqlite://",
        stats_cache_seconds=0,
        board_cache_seconds=0,
    )


@pytest.fixture
def app(db: Session, engine: Engine, settings: Settings) -> FastAPI:
    application = create_app(settings, manage_engine=False)
    application.state.engine = engine

    def override_get_db(request: Request) -> Iterator[Session]:
        # Like production: a clean identity map per request, commit on success — marked as
        # the request's session, so a OneHopRoute endpoint commits it in its own thread, and
        # read-only for a GET, so a read that writes fails here as it would in production.
        db.expunge_all()
        db.info[REQUEST_SESSION] = True
        if request.method in READ_METHODS:
            db.info[READ_ONLY] = True
        try:
            yield db
            db.commit()
        except Exception:
            db.rollback()
            raise
        finally:
            db.info.pop(REQUEST_SESSION, None)
            db.info.pop(COMMITTED_IN_ENDPOINT, None)
            db.info.pop(READ_ONLY, None)

    @contextmanager
    def test_scope(*, read_only: bool) -> Iterator[Session]:
        # The endpoint's own short transactions are savepoints of the test's; like production,
        # a read scope refuses to write and a write scope is never the GET's read-only one.
        before = db.info.pop(READ_ONLY, None)
        if read_only:
            db.info[READ_ONLY] = True
        try:
            yield db
            db.commit()
        except Exception:
            db.rollback()
            raise
        finally:
            db.info.pop(READ_ONLY, None)
            if before:
                db.info[READ_ONLY] = before

    application.dependency_overrides[get_db] = override_get_db
    application.dependency_overrides[get_db_yielding] = override_get_db
    application.state.session_scopes = SessionScopes(
        read=partial(test_scope, read_only=True), write=partial(test_scope, read_only=False)
    )
    return application


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
