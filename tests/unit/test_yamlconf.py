"""YAML configuration errors say file, line and what is wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.engine.yamlconf import ConfigFileError, ConfigFileErrors
from app.flows import load_flows
from app.keywords import load_keywords
from tests.conftest import REPO

VALID = (REPO / "sop_flows" / "commands.yaml").read_text(encoding="utf-8")


def flows_dir(tmp_path: Path, commands: str) -> Path:
    (tmp_path / "commands.yaml").write_text(commands, encoding="utf-8")
    return tmp_path


def error_of(tmp_path: Path, commands: str) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as info:
        load_flows(flows_dir(tmp_path, commands))
    return info.value


def test_repository_flows_and_keywords_are_valid() -> None:
    flows = load_flows(REPO / "sop_flows")
    assert "/help" in flows.commands.help
    keywords = load_keywords(REPO / "keywords.yaml", set(flows.routing.segments))
    assert "shipping" in {rule.id for rule in keywords.rules}
    assert flows.kf.welcome.default


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    error = error_of(tmp_path, 'help: "ok"\nunknown_command: [unclosed\nnot_operator: x\n')
    assert error.path == tmp_path / "commands.yaml"
    assert error.line == 3
    assert str(error).startswith(f"{tmp_path / 'commands.yaml'}:3: invalid YAML")


def test_unknown_placeholder_reports_field_and_line(tmp_path: Path) -> None:
    text = VALID.replace("{command}", "{cmd}")
    error = error_of(tmp_path, text)
    line = next(number for number, content in enumerate(text.splitlines(), 1)
                if content.startswith("unknown_command"))
    assert error.line == line
    assert "unknown_command: unknown placeholder {cmd} (allowed: {command})" in str(error)


def test_missing_and_unexpected_keys(tmp_path: Path) -> None:
    missing = error_of(tmp_path, 'help: "x"\nunknown_command: "y"\n')
    assert "not_operator: Field required" in str(missing)
    extra = error_of(tmp_path, VALID + "\nhelpp: typo\n")
    assert "helpp: unknown key (did you mean 'help'?)" in str(extra)
    assert extra.line == len((VALID + "\nhelpp: typo\n").splitlines())


def test_a_misspelt_key_is_unknown_with_the_closest_name_not_missing(tmp_path: Path) -> None:
    """Issue 14 item 13: `helpp:` for `help:` was reported as `help: Field required`."""
    error = error_of(tmp_path, VALID.replace("\nhelp:", "\nhelpp:", 1))
    assert "helpp: unknown key (did you mean 'help'?)" in str(error)
    assert "help: Field required" not in str(error)


def test_an_unknown_nested_key_lists_the_valid_ones(tmp_path: Path) -> None:
    path = tmp_path / "keywords.yaml"
    path.write_text("rules:\n  - id: x\n    answer: a\n    keywords: [b]\n    zzz: 1\n",
                    encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_keywords(path)
    assert info.value.line == 5
    assert "rules.0.zzz: unknown key (valid: answer, id, keywords," in str(info.value)


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(REPO / "sop_flows", flows)
    lifecycle = flows / "lifecycle.yaml"
    lifecycle.write_text(lifecycle.read_text(encoding="utf-8")
                         .replace("window_days: 14", "window_days: zero")
                         .replace("quiet_days: 14", "quiet_days: -1"), encoding="utf-8")
    (flows / "commands.yaml").write_text(VALID + "\nhelpp: typo\n", encoding="utf-8")
    with pytest.raises(ConfigFileErrors) as info:
        load_flows(flows)
    found = [(error.path.name, error.message.split(":")[0]) for error in info.value.errors]
    assert found == [("commands.yaml", "helpp"), ("lifecycle.yaml", "window_days"),
                     ("lifecycle.yaml", "quiet_days")]


def test_duplicate_key_is_an_error_not_a_silent_override(tmp_path: Path) -> None:
    error = error_of(tmp_path, VALID + '\nhelp: "second"\n')
    assert "duplicate key 'help'" in str(error)
    assert error.line == len((VALID + '\nhelp: "second"\n').splitlines())


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="commands.yaml: file not found"):
        load_flows(tmp_path)


def test_wrong_type(tmp_path: Path) -> None:
    error = error_of(tmp_path, VALID.replace('not_operator: "', 'not_operator: ["').replace(
        '联系社群管理员。"', '联系社群管理员。"]'))
    assert "not_operator: Input should be a valid string" in str(error)


def test_keywords_file_shape(tmp_path: Path) -> None:
    path = tmp_path / "keywords.yaml"
    path.write_text("rules: {a: 1}\nhandoff: {text: x}\ntexts: {unanswered: y}\n",
                    encoding="utf-8")
    expected = r"keywords.yaml:1: rules: Input should be a valid tuple"
    with pytest.raises(ConfigFileError, match=expected):
        load_keywords(path)
