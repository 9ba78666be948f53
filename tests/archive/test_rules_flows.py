"""sop_flows/group_rules.yaml: the shipped file loads; a mistake is reported with the file, its
line and what is wrong; the file is optional."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.archive.flows import GroupRulesFlows
from app.engine.yamlconf import ConfigFileError, flatten
from app.flows import load_flows
from tests.conftest import REPO, config_error

GOOD_TEXTS = """
texts:
  owner_task: "「{group}」的{member}违规 {points} 分"
  operator_alert: "{member}在 {groups} 个群违规 {points} 分"
"""


def test_the_shipped_file() -> None:
    rules = load_flows(REPO / "sop_flows").group_rules
    kinds = {rule.kind for rule in rules.violations}
    assert kinds == {"keywords", "links", "phone", "wechat_id", "flooding"}
    assert rules.thresholds.operator_alert > rules.thresholds.owner_task
    assert rules.questions.answer_within_min == 30 and rules.newcomers.intro_within_days == 3


def test_optional(tmp_path: Path) -> None:
    flows_dir = tmp_path / "sop_flows"
    shutil.copytree(REPO / "sop_flows", flows_dir)
    (flows_dir / "group_rules.yaml").unlink()
    rules = load_flows(flows_dir).group_rules
    assert rules.violations == [] and rules.texts is None
    assert rules.questions.ask_words[:2] == ["？", "?"] and rules.newcomers.min_chars == 6


@pytest.mark.parametrize(("text", "line", "message"), [
    ("violations:\n  - id: ads\n    label: 广告\n    kind: spam\n    points: 1\n" + GOOD_TEXTS,
     4, "violations.0.kind: Input should be 'keywords', 'links', 'phone'"),
    ("violations:\n  - id: ads\n    label: 广告\n    kind: keywords\n    points: 1\n"
     + GOOD_TEXTS, 2, "violations.0: a keywords rule needs keywords"),
    ("violations:\n  - id: ads\n    label: 广告\n    kind: phone\n    points: 1\n"
     "    keywords: [x]\n" + GOOD_TEXTS, 2, "violations.0: a phone rule has no keywords"),
    ("violations:\n  - id: qq\n    label: QQ\n    kind: regex\n    points: 1\n"
     "    pattern: '(a)\\1'\n" + GOOD_TEXTS, 2, "not a pattern RE2 can run"),
    ("violations:\n  - id: links\n    label: 链接\n    kind: links\n    points: 1\n"
     "    allow_domains: ['https://x.com']\n" + GOOD_TEXTS, 2,
     "allow_domains: 'https://x.com' is not a domain"),
    ("violations:\n  - id: flood\n    label: 刷屏\n    kind: flooding\n    points: 1\n"
     + GOOD_TEXTS, 2, "a flooding rule needs max_messages"),
    ("violations:\n  - id: p\n    label: 手机\n    kind: phone\n    points: 1\n"
     "  - id: p\n    label: 手机2\n    kind: phone\n    points: 2\n" + GOOD_TEXTS,
     6, "violations.1.id: 'p' is used twice"),
    ("violations:\n  - id: p\n    label: 手机\n    kind: phone\n    points: 0\n" + GOOD_TEXTS,
     5, "violations.0.points: Input should be greater than or equal to 1"),
    ("violations:\n  - id: p\n    label: 手机\n    kind: phone\n    points: 1\n",
     1, "texts: violations need texts"),
    ("thresholds:\n  owner_task: 8\n  operator_alert: 5\n", 2,
     "thresholds: operator_alert (5) is for repeat offenders"),
    ("texts:\n  owner_task: \"{member} {who}\"\n  operator_alert: x\n", 2,
     "texts.owner_task: unknown placeholder {who}"),
    ("questions:\n  answer_within_mins: 20\n", 2,
     "questions.answer_within_mins: unknown key (did you mean 'answer_within_min'?)"),
    ("newcomers:\n  intro_within_days: 0\n", 2, "newcomers.intro_within_days: Input should be"),
])
def test_mistakes_name_the_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "group_rules.yaml"
    error = config_error(path, text, GroupRulesFlows)
    first = flatten(error)[0]
    assert first.path == path
    assert message in first.message, first.message
    assert first.line == line, (first.line, first.message)


def test_load_flows_names_the_file(tmp_path: Path) -> None:
    flows_dir = tmp_path / "sop_flows"
    shutil.copytree(REPO / "sop_flows", flows_dir)
    path = flows_dir / "group_rules.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("points: 3", "points: lots", 1),
                    encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_flows(flows_dir)
    assert info.value.path == path
    assert info.value.message.startswith("violations.0.points: Input should be a valid integer")
    assert info.value.line is not None
    assert path.read_text(encoding="utf-8").splitlines()[info.value.line - 1].strip() == \
        "points: lots"
