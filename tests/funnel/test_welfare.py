"""A welcome variant carries the default's welfare unless it says `welfare: none`, and
`sopbot check` warns about every welcome that goes out without one."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from app.engine.yamlconf import load_model
from app.faces.cli.main import cli
from app.funnel.flows import FunnelFlows
from tests.conftest import REPO, config_error
from tests.funnel.test_codes import env_file

FUNNEL = load_model(REPO / "sop_flows" / "funnel.yaml", FunnelFlows)
BASE = """\
default_channel: organic
channels:
  organic: {label: 自然, staff: [zhangsan]}
  app: {label: App, staff: [zhangsan], slots: [banner, popup]}
welcome:
  default:
    text: "欢迎 {verify_url}"
    welfare: {title: 新人福利, url: "https://example.com/w"}
  variants:
    - {channel: app, slot: banner, text: 横幅}
    - {channel: app, slot: popup, text: 弹窗, welfare: none}
    - {channel: organic, text: 自然, welfare: {title: 自然福利, url: "https://example.com/o"}}
"""


def funnel_of(tmp_path: Path, text: str) -> FunnelFlows:
    path = tmp_path / "funnel.yaml"
    path.write_text(text, encoding="utf-8")
    return load_model(path, FunnelFlows)


def test_a_variant_inherits_overrides_or_declines_the_welfare(tmp_path: Path) -> None:
    funnel = funnel_of(tmp_path, BASE)
    banner, popup = funnel.welcome_for("app", "banner"), funnel.welcome_for("app", "popup")
    assert banner.text == "横幅" and banner.welfare == funnel.welcome.default.welfare
    assert popup.text == "弹窗" and popup.welfare is None
    assert funnel.welcome_for("organic", None).welfare.title == "自然福利"  # type: ignore[union-attr]


def test_the_repository_variants_send_the_default_welfare() -> None:
    for channel, slot in (("douyin", None), ("app", "order_success")):
        assert FUNNEL.welcome_for(channel, slot).welfare == FUNNEL.welcome.default.welfare
    assert FUNNEL.welcome.welfare_notes() == []


def test_notes_name_each_welcome_without_welfare(tmp_path: Path) -> None:
    assert funnel_of(tmp_path, BASE).welcome.welfare_notes() == [
        "welcome variant app.popup sends no welfare (it says `welfare: none`)"]
    bare = BASE.replace('    welfare: {title: 新人福利, url: "https://example.com/w"}\n', "")
    notes = funnel_of(tmp_path, bare).welcome.welfare_notes()
    assert notes[0].startswith("welcome.default has no welfare") and len(notes) == 2


def test_an_empty_welfare_is_refused_with_the_choices(tmp_path: Path) -> None:
    error = config_error(tmp_path / "funnel.yaml",
                         BASE.replace("text: 横幅}", "text: 横幅, welfare: }"), FunnelFlows)
    assert error.line == 10  # the variant's line
    assert "leave it out to send the default's welfare, or say `welfare: none`" in error.message


def test_check_warns_about_a_variant_without_welfare(db_url: str, tmp_path: Path) -> None:
    env = env_file(tmp_path, db_url)
    clean = CliRunner().invoke(cli, ["check", "--env-file", str(env)])
    assert clean.exit_code == 0 and "welfare" not in clean.stdout
    flows = tmp_path / "flows"
    shutil.copytree(REPO / "sop_flows", flows)
    funnel = flows / "funnel.yaml"
    variant = "    - channel: douyin\n"
    funnel.write_text(funnel.read_text(encoding="utf-8").replace(
        variant, variant + "      welfare: none\n"), encoding="utf-8")
    env.write_text(env.read_text() + f"SOPBOT_FLOWS={flows}\n")
    result = CliRunner().invoke(cli, ["check", "--env-file", str(env)])
    assert result.exit_code == 0, result.output
    assert ("warning: funnel welcome variant douyin sends no welfare (it says `welfare: none`)"
            in result.stdout.splitlines())
