"""The wheel the README's demo command installs: built without touching the source tree (so the
README's two commands can run at once in one checkout, issue 14 item 7) and carrying every file
the service reads at run time (a template missing from it is a 500 on every console page)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

# Read lazily by the running service, so a wheel without them starts fine and fails later.
NEEDED = ["app/faces/console/templates/base.html", "app/faces/console/templates/groups.html",
          "app/faces/console/static/console.css", "app/faces/web/verify/templates/form.html",
          "app/faces/demo/demo.yaml", "migrations/script.py.mako", "migrations/env.py",
          "migrations/versions/0001_inbox.py", "handlers/__init__.py"]


def _tree_state() -> set[Path]:
    # What a build backend may leave behind (setuptools: build/ and *.egg-info); the rest of
    # the tree may change under a test run (a demo serving from the same checkout).
    return {*REPO.glob("build"), *REPO.glob("dist"), *REPO.glob("*.egg-info")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[Path], set[Path]]:
    before = _tree_state()
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(out), str(REPO)],
                   check=True, capture_output=True)
    built, = out.glob("sopbot-*.whl")
    return built, before, _tree_state()


def test_building_writes_nothing_into_the_source_tree(
        wheel: tuple[Path, set[Path], set[Path]]) -> None:
    _, before, after = wheel
    assert after == before


def test_wheel_carries_what_the_service_reads_at_run_time(
        wheel: tuple[Path, set[Path], set[Path]]) -> None:
    names = set(zipfile.ZipFile(wheel[0]).namelist())
    missing = [name for name in NEEDED if name not in names]
    assert not missing
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]
