"""The layering, checked by import-linter's contracts (``[tool.importlinter]`` in
pyproject.toml) and one rule of ours: a router reaches other domains through their services,
never their repositories (whose queries and role scoping belong to the owning domain)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
# The ``lint-imports`` console script, run with this interpreter (no PATH assumptions).
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def test_import_linter_contracts_hold() -> None:
    result = subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert "Contracts: " in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr


def test_routers_do_not_import_other_domains_repositories() -> None:
    graph = grimp.build_graph("app", cache_dir=None)
    offences = sorted(
        f"{router} imports {imported}"
        for router in graph.modules
        if router.endswith(".router")
        for imported in graph.find_modules_directly_imported_by(router)
        if imported.endswith(".repository")
        and imported.rsplit(".", 2)[0] != router.rsplit(".", 2)[0]
    )
    assert offences == [], "routers must call the other domain's service:\n" + "\n".join(offences)
