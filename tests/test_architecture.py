"""The engine stays a pure library: nothing in matching/ may reach the service shell."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

MATCHING = Path(__file__).resolve().parents[1] / "matching"
FORBIDDEN = ("app", "fastapi", "sqlalchemy", "alembic", "starlette", "pydantic", "seed")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_matching_imports_nothing_from_the_shell() -> None:
    offenders = {
        str(path.relative_to(MATCHING.parent)): sorted(imported_modules(path) & set(FORBIDDEN))
        for path in MATCHING.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_matching_imports_alone() -> None:
    """Importing the engine must not drag the shell in through a side door."""
    code = (
        "import sys, matching; "
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=MATCHING.parent)


def _app_imports(package: str) -> set[str]:
    """Full module names ``app/<package>`` imports (absolute imports only, as the house uses)."""
    found: set[str] = set()
    for path in (MATCHING.parent / "app" / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return found


def test_layers_point_one_way() -> None:
    """Runs build on assignments (re-matching lives there) and the worker builds on runs;
    never the other way round, so no import cycle between them can come back."""
    assert not {m for m in _app_imports("assignments") if m.startswith("app.match_runs")}
    assert not {m for m in _app_imports("match_runs") if m.startswith("app.worker")}
