"""keywords.yaml: rules checked with file and line, the fast matcher agreeing with a plain loop,
and the live book reloading a changed file without dropping its rules on a bad edit."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine.yamlconf import ConfigFileError, ConfigFileErrors
from app.keywords import book as book_module
from app.keywords.book import KeywordBook
from app.keywords.matcher import Matcher, plain_match
from app.keywords.rules import Answer, Rule, load_keywords
from tests.conftest import REPO, LogRecorder

SEGMENTS = {"shop_north", "shop_south", "reseller", "online", "online_douyin"}
BASE = """\
rules:
  - id: ship
    keywords: [发货]
    answer: {text: 发货说明}
handoff: {text: 转人工}
texts: {unanswered: 没听懂}
"""


def error(tmp_path: Path, text: str) -> ConfigFileError:
    path = tmp_path / "keywords.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_keywords(path, SEGMENTS)
    return info.value


def test_the_repository_rules_answer_as_declared() -> None:
    keywords = load_keywords(REPO / "keywords.yaml", SEGMENTS)
    matcher = Matcher(keywords.rules)
    found = {text: (r.id if (r := matcher.match(text)) else None) for text in [
        "什么时候发货？", "我要退货，物流太慢了", "怎么认证", "认证", "订单号：2026113012345",
        "ＡＢＣ进货价", "你好"]}
    assert found == {"什么时候发货？": "shipping", "我要退货，物流太慢了": "refund",
                     "怎么认证": "verify", "认证": None,  # "认证" starts the kf dialog
                     "订单号：2026113012345": "order_number", "ＡＢＣ进货价": "price",
                     "你好": None}
    shipping = matcher.match("发货")
    assert shipping is not None
    assert shipping.answer_for("shop_north").text.startswith("北方仓")  # type: ignore[union-attr]
    assert shipping.answer_for(None) == shipping.answer
    assert shipping.answer_for("reseller") == shipping.answer  # no answer of its own


@pytest.mark.parametrize(("change", "line", "message"), [
    (("keywords: [发货]", "match: regex\n    pattern: '(a)\\1'"), 2,
     "rules.0: pattern '(a)\\\\1': not a pattern RE2 can run"),
    (("answer: {text: 发货说明}", "answer: {text: 发货说明}\n    segments: {nowhere: {text: x}}"),
     5, "rules.0.segments: unknown segment 'nowhere'"),
    (("answer: {text: 发货说明}", "answer: {text: a, menu: {items: [{id: a, content: b}]}}"),
     4, "an answer is exactly one of text, link or menu"),
    (("rules:\n", "rules:\n  - {id: ship2, keywords: [发 货, 发货], answer: {text: x}}\n"), 3,
     "rules.1: duplicate rule: contains '发货' is in rules.0 already"),
    (("rules:\n", "rules:\n  - {id: ship, keywords: [快递], answer: {text: x}}\n"), 3,
     "rules.1: id 'ship' is used by rules.0 too"),
    (("keywords: [发货]", "keywords: []"), 2, "a contains rule has keywords and no pattern"),
    (("texts: {unanswered: 没听懂}", "texts: [unanswered"), 7, "invalid YAML"),
    (("answer: {text: 发货说明}", "answer: {menu: {items: [{id: nowhere, content: x}]}}"), 2,
     "rules.0: menu item 'nowhere' names no rule"),
    (("answer: {text: 发货说明}", "answer: {text: " + "长" * 700 + "}"), 4,
     "the text is 2100 bytes; 微信客服 takes 2048"),
])
def test_bad_rules_are_refused_with_file_line_and_reason(tmp_path: Path, change: tuple[str, str],
                                                         line: int, message: str) -> None:
    problem = error(tmp_path, BASE.replace(*change))
    assert message in problem.message, problem.message
    assert (problem.path.name, problem.line) == ("keywords.yaml", line)


def test_every_unknown_segment_is_reported_at_once(tmp_path: Path) -> None:
    """Issue 14 item 13: `sopbot check` names every problem of a run, not the first."""
    two = "answer: {text: 发货说明}\n    segments: {nowhere: {text: x}, elsewhere: {text: y}}"
    problem = error(tmp_path, BASE.replace("answer: {text: 发货说明}", two))
    assert isinstance(problem, ConfigFileErrors)
    assert [e.message for e in problem.errors] == [
        "rules.0.segments: unknown segment 'nowhere' (sop_flows/routing.yaml)",
        "rules.0.segments: unknown segment 'elsewhere' (sop_flows/routing.yaml)"]


def test_a_pattern_that_backtracks_forever_elsewhere_runs_in_linear_time_here() -> None:
    rule = Rule(id="evil", match="regex", pattern="^(a+)+$", answer=Answer(text="x"))
    matcher = Matcher((rule,))
    assert matcher.match("a" * 50_000 + "b") is None  # Python's re would take ages here
    assert matcher.match("a" * 50) is rule


def _rule(n: int, kind: str, word: str, priority: int) -> Rule:
    if kind == "regex":
        return Rule(id=f"r{n}", match="regex", pattern=f"{word}[0-9]?", priority=priority,
                    answer=Answer(text=str(n)))
    return Rule(id=f"r{n}", match=kind, keywords=(word,), priority=priority,  # type: ignore[arg-type]
                answer=Answer(text=str(n)))


WORDS = st.text(alphabet="发货退款AbＣ1", min_size=1, max_size=3)


@settings(max_examples=200, deadline=None)
@given(specs=st.lists(st.tuples(st.sampled_from(["exact", "contains", "regex"]), WORDS,
                                st.integers(-2, 2)), min_size=1, max_size=12),
       texts=st.lists(st.text(alphabet="发货退款AbＣc1 ", max_size=8), min_size=1, max_size=10))
def test_the_matcher_finds_what_a_plain_loop_finds(specs: list[tuple[str, str, int]],
                                                   texts: list[str]) -> None:
    rules = tuple(_rule(n, kind, word, priority) for n, (kind, word, priority) in enumerate(specs)
                  if word.strip())
    matcher = Matcher(rules)
    for text in texts:
        assert matcher.match(text) == plain_match(rules, text), text


def test_the_book_reloads_a_changed_file_and_keeps_its_rules_on_a_bad_edit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keywords.yaml"
    path.write_text(BASE, encoding="utf-8")
    monkeypatch.setattr(book_module, "CHECK_EVERY_S", 0.0)
    logs = LogRecorder()
    monkeypatch.setattr(book_module, "log", logs)
    book = KeywordBook(path, SEGMENTS)
    path.write_text(BASE.replace("[发货]", "[发货, 快递]"), encoding="utf-8")
    assert book.current().matcher.match("快递到哪了") is not None
    path.write_text(BASE.replace("keywords: [发货]", "keywords: [发货"), encoding="utf-8")
    kept = book.current()
    assert kept.matcher.match("快递到哪了") is not None  # the rules in use stay
    [(level, event, fields)] = [line for line in logs.lines if line[1] != "keywords_reloaded"]
    assert (level, event) == ("error", "keywords_reload_failed")
    assert "keywords.yaml:4: invalid YAML" in fields["error"]
    assert book.current() is kept  # not read again until the file changes
