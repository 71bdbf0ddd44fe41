"""Screenshots of the console's main pages at phone and desktop width, for the README.

    .venv/bin/python -m scripts.screenshots            # writes docs/screenshots/*.png

Builds a throw-away SQLite database with the demo data, serves it on loopback, and drives
Debian's Chromium with the same launch recipe as the browser tests (tests/console/browser.py):
the coordinator runs and publishes a match for Fujian, the expert accepts its first offer, then
each role's pages are photographed in Chinese (the default) at 390 px and 1280 px.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from playwright.sync_api import sync_playwright
from sqlalchemy.orm import Session

from app.db import make_engine
from app.main import create_app
from app.migrate import upgrade
from app.settings import Settings
from seed.load import DEMO_PASSWORD, load_demo
from tests.console.browser import launch

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}


def _serve(url: str) -> tuple[uvicorn.Server, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    settings = Settings(environment="test", secret_key="screenshots-" + "x" * 32, database_url=url)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def _log_in(browser: Any, base_url: str, email: str, width: str) -> Any:
    w, h = WIDTHS[width]
    context = browser.new_context(
        base_url=base_url, locale="zh-CN", viewport={"width": w, "height": h}
    )
    tab = context.new_page()
    tab.goto("/login")
    tab.fill("#username", email)
    tab.fill("#password", DEMO_PASSWORD)
    tab.click("form[action='/login'] button[type=submit]")
    tab.wait_for_load_state()
    return tab


def _shoot(tab: Any, name: str, width: str) -> None:
    path = OUT / f"{name}-{width}.png"
    tab.screenshot(path=str(path), full_page=width == "phone")
    print(f"wrote {path.relative_to(OUT.parents[1])}")


def _prepare(browser: Any, base_url: str) -> str:
    """Run and publish a match for Fujian, and accept one offer, so every page has content."""
    tab = _log_in(browser, base_url, "coord.fj@zhuqi.demo", "desktop")
    tab.goto("/coordinator/runs")
    tab.fill("#scope_region", "35")
    tab.click("form[action='/coordinator/runs'] button[type=submit]")
    tab.wait_for_selector("form[action$='/publish'] button", timeout=120_000)
    run_url = str(tab.url)
    tab.click("form[action$='/publish'] button")
    tab.wait_for_selector("form[action$='/revert'] button")
    tab.context.close()
    expert = _log_in(browser, base_url, "expert@zhuqi.demo", "desktop")
    accept = expert.locator("form[action$='/accept'] button")
    if accept.count():
        accept.first.click()
        expert.wait_for_load_state()
    expert.context.close()
    return run_url.removeprefix(base_url)


PAGES = [
    ("coord.fj@zhuqi.demo", "triage", "/coordinator"),
    ("coord.fj@zhuqi.demo", "dashboard", "/coordinator/dashboard"),
    ("coord.fj@zhuqi.demo", "supervision", "/coordinator/supervision"),
    ("expert@zhuqi.demo", "inbox", "/provider"),
    ("enterprise@zhuqi.demo", "enterprise", "/enterprise"),
    ("enterprise@zhuqi.demo", "plan", "/enterprise/plan"),
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/screens.db"
        upgrade(url=url)
        engine = make_engine(url)
        with Session(engine) as session, session.begin():
            load_demo(session, enterprises=120, providers=80)
        engine.dispose()
        server, base_url = _serve(url)
        try:
            with sync_playwright() as playwright:
                browser = launch(playwright)
                run_path = _prepare(browser, base_url)
                pages = [*PAGES, ("coord.fj@zhuqi.demo", "match-run", run_path)]
                for width in WIDTHS:
                    anonymous = browser.new_context(
                        base_url=base_url,
                        locale="zh-CN",
                        viewport=dict(zip(("width", "height"), WIDTHS[width], strict=True)),
                    ).new_page()
                    anonymous.goto("/login")
                    _shoot(anonymous, "login", width)
                    anonymous.context.close()
                    tabs: dict[str, Any] = {}
                    for email, name, path in pages:
                        tab = tabs.get(email) or _log_in(browser, base_url, email, width)
                        tabs[email] = tab
                        tab.goto(path)
                        _shoot(tab, name, width)
                    for tab in tabs.values():
                        tab.context.close()
                browser.close()
        finally:
            server.should_exit = True


if __name__ == "__main__":
    main()
