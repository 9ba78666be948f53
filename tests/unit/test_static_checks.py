"""The static checks run as tests, so the README's test command (and CI) runs them: ruff on
the code and the tests, mypy on app/ and handlers/ (strict on the engine). Both take their
settings from pyproject.toml and come from the `test` extra; each runs on the interpreter
running the tests, so it sees the packages installed with them.

mypy keeps its cache in .mypy_cache (a second run takes a few seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINTED = ("app", "handlers", "tests", "bench")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)


def _report(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


def test_ruff_finds_nothing() -> None:
    result = _run("ruff", "check", "--no-fix", *LINTED)
    assert result.returncode == 0, _report(result)


def test_mypy_finds_nothing() -> None:
    # The files (app, handlers), the strict engine and the plugin are pyproject.toml's.
    result = _run("mypy", "--config-file", "pyproject.toml")
    assert result.returncode == 0, _report(result)
