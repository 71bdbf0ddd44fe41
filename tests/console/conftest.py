"""Fixtures for the console: an HTTPS test client (the session cookie is Secure) and, for the
browser tests, a live uvicorn server on a fresh database plus Debian's Chromium."""

from __future__ import annotations

import importlib
import json
import re
import secrets
from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlalchemy import Engine

from app.console import SESSION_COOKIE
from app.db import make_engine
from app.main import create_app
from app.models import User
from tests.app.conftest import cast  # noqa: F401 - the shared cast of users, re-used here
from tests.conftest import TEST_SECRET
from tests.console.browser import chromium_path, in_ci, launch
from tests.live import BACKENDS, own_database, serve, settings_for

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


@pytest.fixture
def web(app: FastAPI) -> Iterator[TestClient]:
    """The console as a browser sees it: HTTPS (Secure cookie), redirects not followed."""
    with TestClient(
        app, base_url="https://testserver", follow_redirects=False, raise_server_exceptions=False
    ) as client:
        yield client


def log_in(client: TestClient, email: str, password: str = "secret-password-1") -> str:
    """Log in through the form; returns the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login", data={"username": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text[:500]
    return csrf_of(client.get(response.headers["location"]).text)


def sign_in(client: TestClient, user: User) -> str:
    """A signed session cookie for ``user``, as the log-in form would set it, without paying
    for an argon2 verify in every test (the log-in form itself is tested on its own)."""
    token = secrets.token_urlsafe(16)
    payload = b64encode(
        json.dumps({"uid": user.id, "ver": user.token_version, "csrf": token}).encode()
    )
    signed = TimestampSigner(TEST_SECRET).sign(payload).decode()
    client.cookies.set(SESSION_COOKIE, signed)
    return token


# -- live server + browser ----------------------------------------------------------------


@dataclass
class Live:
    base_url: str
    database_url: str
    engine: Engine


@contextmanager
def _serve(url: str) -> Iterator[Live]:
    """A uvicorn server (with its embedded match-run worker) on the migrated database ``url``."""
    engine = make_engine(url)
    try:
        with serve(create_app(settings_for(url, embedded_worker=True))) as base_url:
            yield Live(base_url=base_url, database_url=url, engine=engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """A live server on a fresh database of each backend (the main path runs on both)."""
    with (
        own_database(request.param, tmp_path_factory.mktemp("console")) as url,
        _serve(url) as live,
    ):
        yield live


@pytest.fixture(scope="module")
def live_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One live server for checks that do not depend on the database backend."""
    with own_database("sqlite", tmp_path_factory.mktemp("pages")) as url, _serve(url) as live:
        yield live


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium. Absent: skip with the reason, except under CI=true, where it fails."""
    if chromium_path() is None:
        message = "chromium is not installed (apt-get install -y chromium)"
        if in_ci():
            pytest.fail(f"{message}; CI=true: browser tests must run")
        pytest.skip(message)
    try:
        sync_api = importlib.import_module("playwright.sync_api")
    except ImportError as exc:
        message = "playwright is not installed (pip install -e '.[dev]')"
        if in_ci():
            pytest.fail(f"{message}; CI=true: browser tests must run")
        pytest.skip(message)
        raise AssertionError("unreachable") from exc
    with sync_api.sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@dataclass
class Watch:
    """What a page did wrong: console errors, uncaught exceptions, requests to other hosts."""

    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.foreign == [], self.foreign


class Tabs:
    """One browser context per person (separate cookies), all refusing other hosts."""

    def __init__(self, browser: Any, live: Live) -> None:
        self.browser = browser
        self.own = urlsplit(live.base_url).netloc
        self.base_url = live.base_url
        self.watch = Watch()
        self.contexts: list[Any] = []

    def _route(self, route: Any) -> None:
        url = route.request.url
        if urlsplit(url).netloc == self.own or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.watch.foreign.append(url)
            route.abort()

    def open(self, locale: str = "zh-CN", width: int = 1280, height: int = 900) -> Any:
        context = self.browser.new_context(
            base_url=self.base_url, locale=locale, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(20_000)
        context.route("**/*", self._route)
        self.contexts.append(context)
        tab = context.new_page()
        tab.on("console", lambda m: self.watch.errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda exc: self.watch.errors.append(str(exc)))
        return tab

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def _tabs(browser: Any, live: Live) -> Iterator[Tabs]:
    opened = Tabs(browser, live)
    try:
        yield opened
    finally:
        opened.close()
    opened.watch.assert_clean()


@pytest.fixture
def tabs(browser: Any, live: Live) -> Iterator[Tabs]:
    yield from _tabs(browser, live)


@pytest.fixture
def sqlite_tabs(browser: Any, live_sqlite: Live) -> Iterator[Tabs]:
    yield from _tabs(browser, live_sqlite)
