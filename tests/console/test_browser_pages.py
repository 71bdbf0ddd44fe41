"""Browser checks that do not depend on the database backend (one SQLite server)."""

from __future__ import annotations

from tests.console.conftest import Tabs


def test_english_is_one_click_away_and_sticks(sqlite_tabs: Tabs) -> None:
    tab = sqlite_tabs.open()
    tab.goto("/login")
    assert tab.inner_text("h1") == "登录"
    tab.click("text=English")
    assert tab.inner_text("h1") == "Log in"
    tab.goto("/register")
    assert tab.inner_text("h1") == "Register your enterprise"


def test_offline_api_docs_render(sqlite_tabs: Tabs) -> None:
    tab = sqlite_tabs.open()
    tab.goto("/docs")
    tab.wait_for_selector(".swagger-ui .opblock", state="attached", timeout=30_000)
    tab.goto("/redoc")
    tab.wait_for_selector(
        "redoc [role=navigation], .menu-content", state="attached", timeout=30_000
    )
