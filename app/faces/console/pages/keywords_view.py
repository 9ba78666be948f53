"""What the keywords page shows for a period: the hits of each rule of keywords.yaml (as the
running service has it loaded, rules nobody asked for included), and the questions no rule
answered, repeated ones counted together, so operators see which rules to add. With the chat
archive: the rules' hits in customer groups beside them (WeCom's group auto-reply answers
there; sopbot counts), and the groups' questions nobody answered in time, per segment, each
with the rule that covers it or a rule to paste into keywords.yaml."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.activity import archive_in_use
from app.archive.questions import ALL, HotQuestion, group_keyword_hits, hot_questions
from app.engine.logs import mask_phones
from app.faces.console.labels import NO_SEGMENT
from app.faces.console.periods import Period
from app.faces.console.times import local
from app.keywords.matcher import Matcher
from app.keywords.rules import KeywordsFile, Rule, normalise
from app.kf.models import KeywordHit, UnansweredQuestion

MATCH_LABELS = {"exact": "完全匹配", "contains": "包含", "regex": "正则"}
KEYWORDS_SHOWN = 6
QUESTIONS_READ = 5000  # the newest unanswered questions a page groups (the rest are older)
ORDERS = {"recent": "最近提问在前", "count": "提问次数多在前"}


@dataclass(frozen=True)
class RuleRow:
    rule_id: str
    match: str  # how it matches, in Chinese
    words: str  # its keywords (the first few) or its pattern
    hits: int
    customers: int
    known: bool  # in keywords.yaml now (a rule removed since keeps its old hits)
    group_hits: int | None = None  # in customer groups (None: no chat archive)


@dataclass
class Question:
    """One question as its askers wrote it, however often (case and width ignored)."""

    text: str  # the newest wording
    count: int = 0
    askers: set[str] = field(default_factory=set)
    segments: set[str] = field(default_factory=set)
    last: datetime | None = None

    @property
    def last_asked(self) -> str:
        return local(self.last)

    def segment_list(self, labels: dict[str, str]) -> str:
        return "、".join(labels.get(s, s) for s in sorted(self.segments)) or "—"


def _in_period(column: Any, period: Period) -> list[Any]:
    conditions = [column >= period.since_at]
    if period.until_at is not None:
        conditions.append(column < period.until_at)
    return conditions


def _in_segment(column: Any, segment: str) -> list[Any]:
    if not segment:
        return []
    return [column.is_(None)] if segment == NO_SEGMENT else [column == segment]


async def rule_rows(session: AsyncSession, keywords: KeywordsFile, period: Period,
                    segment: str) -> list[RuleRow]:
    """Every rule with its hits, most hit first (then in the file's order)."""
    counted = {rule_id: (hits, customers) for rule_id, hits, customers in await session.execute(
        select(KeywordHit.rule_id, func.count(), func.count(distinct(KeywordHit.external_userid)))
        .where(*_in_period(KeywordHit.at, period), *_in_segment(KeywordHit.segment, segment))
        .group_by(KeywordHit.rule_id))}
    rows = [_rule_row(rule, *counted.get(rule.id, (0, 0))) for rule in keywords.rules]
    known = {rule.id for rule in keywords.rules}
    rows += [RuleRow(rule_id, "—", "（已不在 keywords.yaml 中）", hits, customers, False)
             for rule_id, (hits, customers) in sorted(counted.items()) if rule_id not in known]
    return sorted(rows, key=lambda r: -r.hits)  # stable: the file's order among equals


def _rule_row(rule: Rule, hits: int, customers: int) -> RuleRow:
    if rule.match == "regex":
        words = rule.pattern or ""
    else:
        shown = "、".join(rule.keywords[:KEYWORDS_SHOWN])
        words = shown + ("…" if len(rule.keywords) > KEYWORDS_SHOWN else "")
    return RuleRow(rule.id, MATCH_LABELS[rule.match], words, hits, customers, True)


async def questions(session: AsyncSession, period: Period, segment: str,
                    order: str) -> tuple[list[Question], int]:
    """The unanswered questions grouped by what they say, and how many were asked in all."""
    conditions = [*_in_period(UnansweredQuestion.at, period),
                  *_in_segment(UnansweredQuestion.segment, segment)]
    total = await session.scalar(select(func.count()).select_from(UnansweredQuestion)
                                 .where(*conditions)) or 0
    rows = await session.execute(
        select(UnansweredQuestion.text, UnansweredQuestion.external_userid,
               UnansweredQuestion.segment, UnansweredQuestion.at)
        .where(*conditions).order_by(UnansweredQuestion.at.desc(), UnansweredQuestion.id.desc())
        .limit(QUESTIONS_READ))
    found = _grouped(rows)  # in order of each one's newest asking
    if order == "count":
        found.sort(key=lambda q: -q.count)
    return found, total


def _grouped(rows: Iterable[Any]) -> list[Question]:
    """(text, asker, segment, at) rows, newest first, as questions: the same question (case and
    width ignored) counted together, in its newest wording."""
    grouped: dict[str, Question] = {}
    for text, asker, asked_in, at in rows:
        question = grouped.setdefault(normalise(text), Question(mask_phones(text), last=at))
        question.count += 1
        question.askers.add(asker)
        if asked_in:
            question.segments.add(asked_in)
    return list(grouped.values())


# Customer groups (the chat archive).

HOT_SHOWN = 20  # hot questions per segment
NO_GROUP_SEGMENT = "未分群的群"
ANSWER_HERE = "（在这里写回答）"


@dataclass(frozen=True)
class HotRow:
    question: HotQuestion
    suggestion: str | None  # a keywords.yaml rule to paste (None: a rule covers it already)

    @property
    def text(self) -> str:
        # Phone numbers masked: a member's number is for the rules page's evidence view only.
        return mask_phones(self.question.example or self.question.key)

    @property
    def last_asked(self) -> str:
        return local(self.question.last_asked)


@dataclass(frozen=True)
class GroupSection:
    """The groups' part of the page: present only when the chat archive is read here."""

    hot: list[tuple[str, str, list[HotRow]]]  # (segment, its label, questions), most asked first
    asked: int  # unanswered questions counted in the ranking


def archive_segment(segment: str) -> str | None:
    """The page's segment filter as the archive's: all, "" for none, or the name."""
    return ALL if not segment else "" if segment == NO_SEGMENT else segment


async def group_section(session: AsyncSession, matcher: Matcher, period: Period, segment: str,
                        now: datetime, answer_within_min: int,
                        labels: dict[str, str]) -> GroupSection | None:
    if not await archive_in_use(session):
        return None
    found = await hot_questions(session, period.since_at, period.until_at, now,
                                answer_within_min, archive_segment(segment), matcher, HOT_SHOWN)
    hot = sorted(((seg, labels.get(seg, seg) if seg else NO_GROUP_SEGMENT,
                   [HotRow(q, None if q.covered_by else suggestion(q)) for q in questions])
                  for seg, questions in found.items()),
                 key=lambda item: (-sum(row.question.count for row in item[2]), not item[0]))
    return GroupSection(hot, sum(q.count for qs in found.values() for q in qs))


async def with_group_hits(session: AsyncSession, rules: list[RuleRow], period: Period,
                          segment: str) -> list[RuleRow]:
    """The rules with their hits in customer groups; a rule only groups hit is added."""
    hits = await group_keyword_hits(session, period.first_day, period.last_day,
                                    archive_segment(segment))
    rows = [replace(row, group_hits=hits.get(row.rule_id, 0)) for row in rules]
    listed = {row.rule_id for row in rules}
    return rows + [RuleRow(rule_id, "—", "（已不在 keywords.yaml 中）", 0, 0, False, n)
                   for rule_id, n in sorted(hits.items()) if rule_id not in listed]


def suggestion(question: HotQuestion) -> str:
    """A keywords.yaml rule answering the question, to paste under `rules:` and complete."""
    rule_id = "group_" + hashlib.sha1(question.key.encode()).hexdigest()[:8]
    keyword = json.dumps(mask_phones(question.suggested_keyword),
                         ensure_ascii=False)  # a YAML string too
    return (f"  - id: {rule_id}\n    keywords: [{keyword}]\n    answer:\n"
            f"      text: {ANSWER_HERE}\n")
