"""sop_flows/koc.yaml is checked like every flow file: its own shape, and what it names in
funnel.yaml and calendar.yaml, with file and line; without it there is no programme."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.engine.yamlconf import ConfigFileError, ConfigFileErrors
from app.flows import load_flows
from tests.conftest import REPO


def flows_with(tmp_path: Path, old: str, new: str, name: str = "koc.yaml") -> Path:
    flows = tmp_path / "flows"
    shutil.copytree(REPO / "sop_flows", flows)
    path = flows / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return flows


def problem(flows: Path) -> ConfigFileError:
    with pytest.raises((ConfigFileError, ConfigFileErrors)) as info:
        load_flows(flows)
    error = info.value
    return error.errors[0] if isinstance(error, ConfigFileErrors) else error


def test_the_channel_must_be_a_referral_channel_of_funnel_yaml(tmp_path: Path) -> None:
    error = problem(flows_with(tmp_path, "channel: ref\n", "channel: douyin\n"))
    assert error.path.name == "koc.yaml" and error.line is not None
    assert "'douyin' is not a channel of funnel.yaml declared with `referral: true`" \
        in error.message


def test_a_referral_channel_has_no_slots(tmp_path: Path) -> None:
    flows = flows_with(tmp_path, "    referral: true\n",
                       "    referral: true\n    slots: [a]\n", "funnel.yaml")
    error = problem(flows)
    assert error.path.name == "funnel.yaml"
    assert "a referral channel has no slots" in error.message


def test_tiers_must_grow_and_placeholders_be_known(tmp_path: Path) -> None:
    error = problem(flows_with(tmp_path, "referrals: 10,", "referrals: 2,"))
    assert "tiers: list them by referrals" in error.message
    error = problem(flows_with(tmp_path / "2", "not_eligible: 完成", "not_eligible: 请{name}完成"))
    assert "unknown placeholder {name}" in error.message and error.line is not None


def test_the_honor_roll_column_must_be_a_calendar_column(tmp_path: Path) -> None:
    error = problem(flows_with(tmp_path, "  column: honor_roll\n", "  column: hall\n"))
    assert "honor_roll.column: 'hall' is not a column of calendar.yaml" in error.message


def test_without_koc_yaml_there_is_no_programme(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(REPO / "sop_flows", flows)
    (flows / "koc.yaml").unlink()
    assert load_flows(flows).koc is None
    assert load_flows(REPO / "sop_flows").koc is not None


def test_the_member_pages_texts_are_checked_with_the_programme(tmp_path: Path) -> None:
    flows = flows_with(tmp_path, "pending:", "pendingg:", "koc_pages.yaml")
    error = problem(flows)
    assert error.path.name == "koc_pages.yaml" and "referral_status" in error.message


def test_the_honor_roll_column_must_be_one_sopbot_fills(tmp_path: Path) -> None:
    flows = flows_with(tmp_path, "generated: [honor_roll]", "generated: []", "calendar.yaml")
    error = problem(flows)
    assert error.path.name == "koc.yaml"
    assert "list 'honor_roll' under calendar.yaml's `generated`" in error.message


def test_a_generated_column_must_be_a_column(tmp_path: Path) -> None:
    flows = flows_with(tmp_path, "generated: [honor_roll]", "generated: [hall]",
                       "calendar.yaml")
    error = problem(flows)
    assert error.path.name == "calendar.yaml" and "generated.0: unknown column 'hall'" \
        in error.message
