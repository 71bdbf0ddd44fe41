"""The benchmark commands of the README and of the measurement journal run as written: their
arguments parse (issue 13.5).

Running the benchmarks themselves takes minutes; parsing each README line with the script's
own parser is what failed before (``--sizes 10k 50k`` against a comma-only option).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path
from types import ModuleType

import pytest

from seed.__main__ import _arguments as seed_arguments

ROOT = Path(__file__).resolve().parents[1]
COMMAND = re.compile(r"^\.venv/bin/python (bench/\w+\.py|-m seed)\b([^#\n]*)", re.M)


def _module(script: str) -> ModuleType:
    path = ROOT / script
    spec = importlib.util.spec_from_file_location(path.stem + "_readme", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def _commands() -> list[tuple[str, list[str]]]:
    """The README's commands and the measurement journal's (docs/benchmarks.md)."""
    found = [
        command
        for document in ("README.md", "docs/benchmarks.md")
        for command in COMMAND.findall((ROOT / document).read_text(encoding="utf-8"))
    ]
    return [(script, shlex.split(rest)) for script, rest in found]


def test_the_readme_lists_benchmark_commands() -> None:
    assert {script for script, _ in _commands()} >= {"bench/pipeline.py", "bench/service.py"}


@pytest.mark.parametrize(("script", "argv"), _commands())
def test_readme_command_parses(script: str, argv: list[str]) -> None:
    if script == "-m seed":
        seed_arguments(argv)
        return
    module = _module(script)
    args = module.build_parser().parse_args(argv)
    if script == "bench/pipeline.py":
        assert module.sizes_of(args.sizes)
