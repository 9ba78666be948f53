"""The README's top shows the two commands, and CI runs exactly the second one."""

from __future__ import annotations

import re

from tests.conftest import REPO


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
