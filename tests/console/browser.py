"""Debian's Chromium driven by Playwright: the one launch recipe for tests and screenshots.

Never ``playwright install``: the browser is the system package (``apt-get install chromium``).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    return shutil.which("chromium")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def launch(playwright: Any) -> Any:
    """A headless Chromium; the caller closes it."""
    path = chromium_path()
    if path is None:
        raise RuntimeError("chromium is not installed: apt-get install -y chromium")
    return playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_FLAGS)
