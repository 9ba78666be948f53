"""sop_flows/funnel.yaml: attribution of a friend add's state, the welcome variant chosen, and
declaration errors reported with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine.yamlconf import ConfigFileError, load_model
from app.funnel.flows import FunnelFlows
from tests.conftest import REPO, config_error

FUNNEL = load_model(REPO / "sop_flows" / "funnel.yaml", FunnelFlows)

BASE = """\
default_channel: organic
channels:
  organic: {label: 自然, staff: [zhangsan]}
  app: {label: App, staff: [zhangsan], slots: [banner]}
welcome:
  default: {text: "欢迎 {verify_url}"}
"""


def error_of(tmp_path: Path, text: str) -> ConfigFileError:
    return config_error(tmp_path / "funnel.yaml", text, FunnelFlows)


def test_the_repository_declares_seven_app_slots_and_a_code_per_pair() -> None:
    assert len(FUNNEL.channels["app"].slots) == 7
    assert len(FUNNEL.codes()) == 4 + 7
    assert ("app", "order_success") in FUNNEL.codes() and ("douyin", None) in FUNNEL.codes()


@pytest.mark.parametrize(("state", "expected"), [
    ("app.home_banner", ("app", "home_banner", True)),
    ("douyin", ("douyin", None, True)),
    ("", ("organic", None, False)),
    ("app", ("organic", None, False)),            # a channel with slots needs its slot
    ("douyin.home_banner", ("organic", None, False)),  # a slot of another channel
    ("app.nope", ("organic", None, False)),
    ("unknown.x.y", ("organic", None, False)),
])
def test_attribution_of_a_state(state: str, expected: tuple[str, str | None, bool]) -> None:
    assert FUNNEL.attribute(state) == expected


def test_the_most_specific_welcome_variant_wins() -> None:
    assert FUNNEL.welcome_for("app", "order_success").text.startswith("您好，感谢您在 App 下单")
    assert FUNNEL.welcome_for("douyin", None).text.startswith("您好，感谢从抖音关注我们")
    assert FUNNEL.welcome_for("app", "home_banner") == FUNNEL.welcome.default


@pytest.mark.parametrize(("change", "line", "message"), [
    (("default_channel: organic", "default_channel: nowhere"), 1,
     "default_channel 'nowhere' is not a channel"),
    (("slots: [banner]", "slots: [banner, banner]"), 4, "a slot is listed twice"),
    (("slots: [banner]", "slots: [a_very_long_slot_name_over_limit]"), 3, "over 30 characters"),
    (("staff: [zhangsan], slots", "staff: [], slots"), 4, "at least 1 item"),
    (("欢迎 {verify_url}", "欢迎 {phone}"), 6, "unknown placeholder {phone}"),
    (("  app: {", "  App: {"), 3, "channel 'App': use lower-case letters"),
])
def test_declaration_errors_say_line_and_what(tmp_path: Path, change: tuple[str, str], line: int,
                                              message: str) -> None:
    error = error_of(tmp_path, BASE.replace(*change))
    assert error.line == line and message in error.message


def test_a_variant_must_name_a_declared_channel_and_slot(tmp_path: Path) -> None:
    text = BASE + "  variants:\n    - {channel: app, slot: footer, text: 嗨}\n"
    error = error_of(tmp_path, text)
    assert "welcome.variants.0: channel 'app' has no slot 'footer'" in error.message
