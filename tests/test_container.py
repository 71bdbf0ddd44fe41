"""The container, checked as files (there is no Docker engine here): PID 1 forwards SIGTERM,
migrations are their own step, the dependency layer depends on the lock file alone, the
image runs unprivileged and is health-checked; compose runs PostgreSQL, a migration, two API
processes and two workers. How the processes behave on SIGTERM is tested on the processes
themselves (tests/app/test_graceful_shutdown.py)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def last(keyword: str) -> str:
    return [rest for kw, rest in instructions() if kw == keyword][-1]


class TestDockerfile:
    def test_pid_1_is_an_init_and_the_command_has_no_shell(self) -> None:
        assert json.loads(last("ENTRYPOINT"))[0].endswith("tini")
        command = json.loads(last("CMD"))
        assert command[:2] == ["zhuqi", "serve"]
        assert "sh" not in command
        assert "migrate" not in command  # a separate step, not each replica's start-up

    def test_dependency_layer_depends_on_the_lock_file_only(self) -> None:
        steps = instructions()
        first_copy = next(i for i, (kw, _) in enumerate(steps) if kw == "COPY")
        install = next(i for i, (kw, rest) in enumerate(steps) if "-r requirements.lock" in rest)
        assert steps[first_copy][1].split()[:-1] == ["requirements.lock"]
        assert all(kw != "COPY" for kw, _ in steps[first_copy + 1 : install])
        assert "--no-deps" in steps[install][1]

    def test_runs_unprivileged_and_is_health_checked(self) -> None:
        steps = [kw for kw, _ in instructions()]
        assert "USER" in steps
        assert steps.index("USER") < steps.index("CMD")
        assert last("USER") not in ("root", "0")
        assert "/healthz" in last("HEALTHCHECK")


class TestBuildContext:
    def test_dockerignore_admits_only_what_the_image_needs(self) -> None:
        lines = [
            line.strip()
            for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        assert lines[0] == "*"
        admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
        assert admitted == {
            "requirements.lock",
            "pyproject.toml",
            "README.md",
            "app",
            "matching",
            "seed",
            "migrations",
        }


class TestLockFile:
    def test_every_runtime_dependency_is_pinned_within_its_range(self) -> None:
        project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        declared = [
            Requirement(r)
            for r in project["dependencies"] + project["optional-dependencies"]["postgres"]
        ]
        pinned: dict[str, str] = {}
        for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                name, _, version = line.partition("==")
                assert version, f"{line!r} is not pinned with =="
                pinned[canonicalize_name(name)] = version
        for requirement in declared:
            name = canonicalize_name(requirement.name)
            assert name in pinned, f"{requirement.name} missing from requirements.lock"
            assert requirement.specifier.contains(pinned[name], prereleases=True), (
                f"requirements.lock pins {name}=={pinned[name]}, outside {requirement}"
            )


class TestCompose:
    def compose(self) -> dict[str, Any]:
        data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
        services: dict[str, Any] = data["services"]
        return services

    def test_postgres_migration_two_apis_and_two_workers(self) -> None:
        services = self.compose()
        assert services["db"]["image"].startswith("postgres")
        assert services["migrate"]["command"] == ["zhuqi", "migrate"]
        apis = [
            s for s in services.values() if s.get("image") == "zhuqi:latest" and "command" not in s
        ]
        workers = [
            s
            for s in services.values()
            if s.get("command", [None, None])[:2] == ["zhuqi", "worker"]
        ]
        assert len(apis) == 2
        assert len(workers) == 2
        for service in apis + workers:
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
            assert service["environment"]["ZHUQI_EMBEDDED_WORKER"] == "false"
            assert service["environment"]["DATABASE_URL"].startswith("postgresql://")
