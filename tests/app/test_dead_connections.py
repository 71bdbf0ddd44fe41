"""A pooled connection the server has ended is never handed to a request, and a server that
goes silent fails what waits on it instead of hanging it.

The engine checks a pooled connection's socket at checkout instead of pinging the server with
``SELECT 1`` on every request (app/db.py). These tests end every session of the service's
database from the server side, as a restart or an administrator would, and expect the next
request to be served on a fresh connection, not answered with an error.

A server can also vanish without a word (a host powered off, a network cut). The silent-link
tests route PostgreSQL across a virtual link (a veth pair into a network namespace, a relay
on each side), take the link down mid-connection, and expect a 503 within the network
timeout, not a request thread held for the kernel's ~15 minutes of retransmissions.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.db import make_engine
from app.main import create_app
from app.models import Role
from tests.conftest import TEST_SECRET
from tests.factories import auth_headers, make_enterprise, make_user
from tests.live import end_sessions, free_port, own_database, serve, settings_for


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with own_database("postgresql", tmp_path_factory.mktemp("dead")) as url:
        yield url


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_the_pool_replaces_a_connection_the_server_ended(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=1)
    try:
        before = _backend_pid(engine)
        assert end_sessions(pg_url) >= 1
        after = _backend_pid(engine)
    finally:
        engine.dispose()
    assert after != before


def _an_enterprise_and_its_coordinator(pg_url: str) -> tuple[str, dict[str, str]]:
    """An enterprise's API path and the headers of a coordinator who may read it."""
    engine = make_engine(pg_url)
    with Session(engine) as session, session.begin():
        enterprise = make_enterprise(session)
        coordinator = make_user(session, Role.COORDINATOR, region_prefixes=["35"])
        headers = auth_headers(coordinator, TEST_SECRET)
        path = f"/api/v1/enterprises/{enterprise.id}"
    engine.dispose()
    return path, headers


def test_a_request_after_the_server_ended_every_session_succeeds(pg_url: str) -> None:
    path, headers = _an_enterprise_and_its_coordinator(pg_url)
    app = create_app(settings_for(pg_url, principal_cache_seconds=0))
    with serve(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        assert client.get(path, headers=headers).status_code == 200
        assert end_sessions(pg_url) >= 1
        responses = [client.get(path, headers=headers) for _ in range(3)]
    assert [response.status_code for response in responses] == [200, 200, 200]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@dataclass(frozen=True)
class SilentLink:
    """The test database reached across a virtual link that can be cut without a word."""

    url: str
    namespace: str
    inner: str  # the link's end inside the namespace
    address: tuple[str, int]  # the relay across the link

    def cut(self) -> None:
        """Down goes the link: from now on nothing crosses it, and nobody is told."""
        _ip("netns", "exec", self.namespace, "ip", "link", "set", self.inner, "down")

    def mend(self) -> None:
        """Up again, once a connection crosses it: a link just raised drops its first
        packets for a moment (its carrier and neighbours come back)."""
        _ip("netns", "exec", self.namespace, "ip", "link", "set", self.inner, "up")
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(self.address, timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise


def _relay(command: list[str]) -> subprocess.Popen[str]:
    relay = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert relay.stdout is not None
    if relay.stdout.readline().strip() != "ready":
        relay.kill()
        raise RuntimeError(f"relay did not start: {command}")
    return relay


@pytest.fixture
def silent_link(pg_url: str) -> Iterator[SilentLink]:
    if sys.platform != "linux" or shutil.which("ip") is None:
        pytest.skip("the silent-link test needs Linux network namespaces (iproute2's ip)")
    tag = f"zq{os.getpid() % 100_000}"
    namespace, outer, inner = tag, f"{tag}o", f"{tag}i"
    subnet = f"10.213.{os.getpid() % 250 + 1}"
    try:
        _ip("netns", "add", namespace)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot make a network namespace here (needs root): {exc.stderr.strip()}")
    relays: list[subprocess.Popen[str]] = []
    try:
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", namespace)
        _ip("addr", "add", f"{subnet}.1/30", "dev", outer)
        _ip("link", "set", outer, "up")
        inside = ("netns", "exec", namespace)
        _ip(*inside, "ip", "addr", "add", f"{subnet}.2/30", "dev", inner)
        _ip(*inside, "ip", "link", "set", inner, "up")
        server = make_url(pg_url)
        relay = [sys.executable, str(Path(__file__).resolve().parents[1] / "relay.py")]
        port = str(free_port())
        target = (server.host or "127.0.0.1", str(server.port or 5432))
        relays.append(_relay([*relay, f"{subnet}.1", port, *target]))
        relays.append(_relay(["ip", *inside, *relay, f"{subnet}.2", "5432", f"{subnet}.1", port]))
        url = server.set(host=f"{subnet}.2", port=5432).render_as_string(hide_password=False)
        yield SilentLink(url=url, namespace=namespace, inner=inner, address=(f"{subnet}.2", 5432))
    finally:
        for relay_process in relays:
            relay_process.kill()
            relay_process.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", outer], capture_output=True, timeout=30)


def _bounded(call: Callable[[], Any], seconds: float) -> Any:
    """What ``call`` returned or raised, if it ended within ``seconds`` (a hang fails the
    test instead of stalling the suite; the thread is left behind, a daemon)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # the outcome under test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still waiting after {seconds} s"
    return outcome[0]


def test_a_statement_to_a_silent_server_fails_instead_of_hanging(
    silent_link: SilentLink,
) -> None:
    engine = make_engine(silent_link.url, pool_size=1, network_timeout_ms=1_000)
    try:
        _backend_pid(engine)  # one pooled connection, across the link
        silent_link.cut()
        assert isinstance(_bounded(lambda: _backend_pid(engine), 60), OperationalError)
        silent_link.mend()
        assert isinstance(_bounded(lambda: _backend_pid(engine), 60), int)  # a fresh one
    finally:
        engine.dispose()


def test_requests_get_503_while_the_server_is_silent_and_healthz_answers(
    pg_url: str, silent_link: SilentLink
) -> None:
    path, headers = _an_enterprise_and_its_coordinator(pg_url)
    settings = settings_for(silent_link.url, principal_cache_seconds=0, db_network_timeout_ms=1_000)
    with serve(create_app(settings)) as base_url, httpx.Client(base_url=base_url) as client:
        assert client.get(path, headers=headers, timeout=30).status_code == 200
        silent_link.cut()
        waiting = threading.Thread(target=lambda: client.get(path, headers=headers, timeout=60))
        waiting.start()  # a request held by the silent server while /healthz is asked
        assert client.get("/healthz", timeout=30).status_code == 200
        assert client.get("/readyz", timeout=30).status_code == 503  # within its deadline
        waiting.join(60)
        during = client.get(path, headers=headers, timeout=60)
        assert during.status_code == 503, during.text
        assert during.headers["retry-after"]
        silent_link.mend()
        assert client.get(path, headers=headers, timeout=30).status_code == 200
