"""The README's top shows the two commands, and CI runs exactly the second one; both, and the
Dockerfile, install the versions pinned in requirements.lock (docs/dependencies.md)."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import REPO

LOCK = "requirements.lock"


def top_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.*?)\n```", readme.split("---")[0], re.DOTALL)


def test_readme_top_has_exactly_two_commands() -> None:
    run, test = top_commands()
    assert run.endswith("sopbot demo")  # issue 7: the demo is the first thing to run
    assert "pytest" in test


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci_lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci_lines[-1] == top_commands()[1]


def locked_pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (REPO / LOCK).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)(\s*;.*)?", line)
            assert match, f"{LOCK}: not an exact pin: {line!r}"
            pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def venv_of(command: str) -> str:
    made = re.match(r"python3 -m venv (\S+) && ", command)
    assert made, command
    venv = made[1]
    # Every step runs in the venv the command made, never in another one.
    assert set(re.findall(r"(\S+)/bin/", command)) == {venv}, command
    return venv


def test_readme_commands_install_into_venvs_of_their_own() -> None:
    """Issue 14 item 7: the test command's editable reinstall into the demo's venv took the
    templates from under a serving demo (every console page a 500)."""
    run, test = top_commands()
    assert venv_of(run) != venv_of(test)


def test_readme_commands_and_dockerfile_install_with_the_lock() -> None:
    for command in top_commands():
        assert f"{venv_of(command)}/bin/pip install -q -c {LOCK} " in command
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    copied = [line.split()[1:-1] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    assert any(LOCK in sources for sources in copied)
    assert f"pip install --no-cache-dir -c {LOCK} ." in dockerfile


def test_lock_pins_every_direct_dependency_within_its_range() -> None:
    """Fails when a dependency is added to (or its range moved in) pyproject.toml without
    running scripts/lock.sh."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = locked_pins()
    for line in project["dependencies"] + project["optional-dependencies"]["test"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in {LOCK}: run scripts/lock.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{LOCK} pins {name}=={pins[name]}, outside {requirement.specifier}: "
            "run scripts/lock.sh"
        )
