"""A credential changed in one process ends what the others cached for it at the change's
commit (PostgreSQL LISTEN/NOTIFY), not ``ZHUQI_PRINCIPAL_CACHE_SECONDS`` later.

PostgreSQL only: SQLite has no channel between processes (app/common/credential_notices.py).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.common.credential_notices import CHANNEL, CredentialListener
from app.common.principal_cache import watch_credentials
from app.db import make_engine
from app.main import create_app
from app.models import Role, User
from tests.conftest import TEST_SECRET
from tests.factories import auth_headers, make_user
from tests.live import end_sessions, own_database, settings_for

ME = "/api/v1/users/me"
# Another API process's change: the ORM with the credential hooks an app registers.
DEACTIVATE = """
import sys
from sqlalchemy.orm import Session
from app.common.principal_cache import watch_credentials
from app.db import make_engine
from app.models import User
watch_credentials()
engine = make_engine(sys.argv[1])
with Session(engine) as session, session.begin():
    session.get_one(User, int(sys.argv[2])).is_active = False
engine.dispose()
"""


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with own_database("postgresql", tmp_path_factory.mktemp("notices")) as url:
        yield url


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def a_user(engine: Engine) -> tuple[int, dict[str, str]]:
    with Session(engine) as session, session.begin():
        user = make_user(session, Role.COORDINATOR, region_prefixes=["35"])
        return user.id, auth_headers(user, TEST_SECRET)


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass (the notice travels between
    threads and processes: there is no event here to wait on)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_deactivation_in_another_process_ends_a_cached_token_at_once(
    pg_url: str, engine: Engine
) -> None:
    user_id, headers = a_user(engine)
    app = create_app(settings_for(pg_url, principal_cache_seconds=300))
    with TestClient(app) as client:
        assert app.state.credential_listener.listening.wait(10)
        assert client.get(ME, headers=headers).status_code == 200  # now cached for 300 s
        assert client.get(ME, headers=headers).status_code == 200
        subprocess.run([sys.executable, "-c", DEACTIVATE, pg_url, str(user_id)], check=True)
        assert wait_until(lambda: client.get(ME, headers=headers).status_code == 401)


def test_no_listener_without_a_cache_or_on_sqlite(pg_url: str) -> None:
    without_cache = create_app(settings_for(pg_url, principal_cache_seconds=0))
    with TestClient(without_cache):
        assert without_cache.state.credential_listener is None
    on_sqlite = create_app(settings_for("sqlite://"))
    with TestClient(on_sqlite):
        assert on_sqlite.state.credential_listener is None


class TestListener:
    @pytest.fixture
    def heard(self, engine: Engine) -> Iterator[tuple[CredentialListener, list[int]]]:
        notices: list[int] = []
        listener = CredentialListener(engine, lambda: notices.append(1), retry_seconds=0.05)
        listener.start()
        assert listener.listening.wait(10)
        try:
            yield listener, notices
        finally:
            listener.stop()

    def test_a_change_rolled_back_says_nothing_and_a_committed_one_does(
        self, engine: Engine, heard: tuple[CredentialListener, list[int]]
    ) -> None:
        watch_credentials()
        listener, notices = heard
        user_id, _ = a_user(engine)
        before = len(notices)
        with Session(engine) as session:
            session.get_one(User, user_id).is_active = False
            session.flush()  # the NOTIFY is sent with the UPDATE ...
            session.rollback()  # ... and dropped with it
        with Session(engine) as session, session.begin():
            session.get_one(User, user_id).full_name = "改名"
        assert wait_until(lambda: len(notices) > before)
        listener.stop()  # reads what had arrived before it stops
        assert len(notices) == before + 1  # notices arrive in commit order: none came first

    def test_a_lost_connection_is_opened_again_and_forgets_what_was_cached(
        self, pg_url: str, heard: tuple[CredentialListener, list[int]]
    ) -> None:
        listener, notices = heard
        before = len(notices)
        ended = end_sessions(pg_url, "query = :listen", listen=f"LISTEN {CHANNEL}")
        assert ended == 1
        assert wait_until(lambda: len(notices) > before and listener.listening.is_set())
