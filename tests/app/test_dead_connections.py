"""A pooled connection the server has ended is never handed to a request.

The engine checks a pooled connection's socket at checkout instead of pinging the server with
``SELECT 1`` on every request (app/db.py). These tests end every session of the service's
database from the server side, as a restart or an administrator would, and expect the next
request to be served on a fresh connection, not answered with an error.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from app.db import make_engine
from app.main import create_app
from app.models import Role
from tests.conftest import TEST_SECRET
from tests.factories import auth_headers, make_enterprise, make_user
from tests.live import own_database, serve, settings_for


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with own_database("postgresql", tmp_path_factory.mktemp("dead")) as url:
        yield url


def _end_every_other_session(url: str) -> int:
    """``pg_terminate_backend`` on every session of the database but the caller's; waits
    (server side) until each has ended. How many were ended."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            ended = connection.execute(
                text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) "
                    "FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
    finally:
        admin.dispose()
    return int(ended)


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_the_pool_replaces_a_connection_the_server_ended(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=1)
    try:
        before = _backend_pid(engine)
        assert _end_every_other_session(pg_url) >= 1
        after = _backend_pid(engine)
    finally:
        engine.dispose()
    assert after != before


def test_a_request_after_the_server_ended_every_session_succeeds(pg_url: str) -> None:
    engine = make_engine(pg_url)
    with Session(engine) as session, session.begin():
        enterprise = make_enterprise(session)
        coordinator = make_user(session, Role.COORDINATOR, region_prefixes=["35"])
        headers = auth_headers(coordinator, TEST_SECRET)
        path = f"/api/v1/enterprises/{enterprise.id}"
    engine.dispose()
    app = create_app(settings_for(pg_url, principal_cache_seconds=0))
    with serve(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        assert client.get(path, headers=headers).status_code == 200
        assert _end_every_other_session(pg_url) >= 1
        responses = [client.get(path, headers=headers) for _ in range(3)]
    assert [response.status_code for response in responses] == [200, 200, 200]
