"""Questions in customer groups, and whether anyone answered them in time (the archive page
step `track_questions`); the keywords.yaml rules group messages hit, per day and segment.

A customer's text that asks (app/archive/question_text.py) is a question (group_question). A
later message in the same group by someone else, staff, another customer or a robot (WeCom's
group auto-reply), within `answer_within_min` minutes of the question by the messages' own
times, answers it: each such message answers the earliest question still open in that window,
one question per message, so a busy group with one reply keeps its other questions open. A
customer's question is never an answer to another's. A customer who answers gets it counted
(speaker.answers, speaker_day.answers: the activity step made those rows already).

A recall takes its message back: a recalled question is dropped (its answer uncounted), a
recalled answer reopens its question. Keyword hits stay counted: WeCom's auto-reply answered
the message before it was recalled.

Set-based: one query reads the open questions of a page's groups, the page is played in seq
order in memory, and each table is written with one statement."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, delete, distinct, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.activity import local_day
from app.archive.flows import GroupRulesFlows, QuestionSettings
from app.archive.models import (
    ArchivedMessage,
    GroupKeywordDay,
    GroupQuestion,
    Speaker,
    SpeakerDay,
)
from app.archive.question_text import Asking, key_of, suggested_keyword
from app.engine.bot.env import Env
from app.engine.bot.router import ArchivePageStep
from app.engine.db import insert_for
from app.engine.wecom.archive_events import CUSTOMER, RECALL, SEND, ArchiveMessage
from app.groups.models import CustomerGroup
from app.keywords.book import book_for
from app.keywords.matcher import Matcher
from app.routing.flows import RoutingFlows


class QuestionSources(Protocol):
    """What the questions step reads of the flows."""

    @property
    def group_rules(self) -> GroupRulesFlows: ...
    @property
    def routing(self) -> RoutingFlows: ...


def build_questions_step(env: Env[QuestionSources]) -> ArchivePageStep:
    """The archive page step, with the settings of sop_flows/group_rules.yaml and the service's
    keyword book (keywords.yaml as loaded, reloaded when the file changes)."""
    rules = env.flows.group_rules.questions
    book = book_for(env.settings.keywords_path, set(env.flows.routing.segments))

    async def track(session: AsyncSession, messages: Sequence[ArchiveMessage],
                    now: datetime) -> None:
        await track_questions(session, messages, now, rules, book.current().matcher)
    return track


@dataclass
class _Open:
    """A question while the page is played: from the database (id) or from this page."""

    msgid: str
    chat_id: str
    asker: str
    asked_at: datetime
    id: int | None = None
    answer: ArchiveMessage | None = None


@dataclass
class _Page:
    questions: list[dict[str, Any]]  # new group_question rows
    answered: list[_Open]  # questions this page answered
    hits: Counter[tuple[date, str, str]]  # (day, segment, rule)


async def track_questions(session: AsyncSession, messages: Sequence[ArchiveMessage],
                          now: datetime, rules: QuestionSettings, matcher: Matcher | None) -> None:
    """The page step: new questions, answers to open ones, keyword hits; recalls taken back."""
    sends = [m for m in messages if m.action == SEND and m.chat_id]
    if sends:
        window = timedelta(minutes=rules.answer_within_min)
        segments = await _segments(session, {m.chat_id for m in sends})
        page = _read(sends, segments, Asking(rules.ask_words, rules.min_chars), matcher)
        opened = await _open_questions(session, sends, window)
        _play(sends, page, opened, window, {key_of(text) for text in rules.not_answers})
        await _write(session, page)
    recalled = [m.recalled_msgid for m in messages if m.action == RECALL and m.recalled_msgid]
    if recalled:
        await _take_back(session, recalled)


async def _segments(session: AsyncSession, chat_ids: set[str]) -> dict[str, str | None]:
    rows = await session.execute(select(CustomerGroup.chat_id, CustomerGroup.segment)
                                 .where(CustomerGroup.chat_id.in_(chat_ids)))
    return {chat_id: segment for chat_id, segment in rows}


def _read(sends: list[ArchiveMessage], segments: dict[str, str | None], asking: Asking,
          matcher: Matcher | None) -> _Page:
    """The page's questions and keyword hits (customers' texts only)."""
    page = _Page([], [], Counter())
    for message in sends:
        if message.sender_kind != CUSTOMER or not message.text:
            continue
        segment = segments.get(message.chat_id)
        rule = matcher.match(message.text) if matcher is not None else None
        if rule is not None:
            page.hits[local_day(message.msgtime), segment or "", rule.id] += 1
        key = asking.key(message.text)
        if key is not None:
            page.questions.append({
                "msgid": message.msgid, "chat_id": message.chat_id, "segment": segment,
                "asker": message.sender, "asked_at": message.msgtime, "key": key,
                "keyword_rule": rule.id if rule else None, "answered_at": None,
                "answered_by": None, "answer_msgid": None, "answer_kind": None})
    return page


async def _open_questions(session: AsyncSession, sends: list[ArchiveMessage],
                          window: timedelta) -> dict[str, list[_Open]]:
    """Per group, the stored questions still open that a message of the page may answer."""
    rows = await session.execute(
        select(GroupQuestion.id, GroupQuestion.msgid, GroupQuestion.chat_id,
               GroupQuestion.asker, GroupQuestion.asked_at)
        .where(GroupQuestion.chat_id.in_({m.chat_id for m in sends}),
               GroupQuestion.answered_at.is_(None),
               GroupQuestion.asked_at >= min(m.msgtime for m in sends) - window,
               GroupQuestion.asked_at <= max(m.msgtime for m in sends))
        .order_by(GroupQuestion.asked_at, GroupQuestion.id))
    found: dict[str, list[_Open]] = {}
    for id_, msgid, chat_id, asker, asked_at in rows:
        found.setdefault(chat_id, []).append(_Open(msgid, chat_id, asker, asked_at, id_))
    return found


def _play(sends: list[ArchiveMessage], page: _Page, opened: dict[str, list[_Open]],
          window: timedelta, not_answers: set[str]) -> None:
    """The page in seq order: each message that can answer (not a question, not a greeting or
    thanks: `not_answers`) answers the earliest open question of its group in its window that
    someone else asked; a customer's question then opens."""
    asked = {row["msgid"]: row for row in page.questions}
    for message in sends:
        question = asked.get(message.msgid)
        if question is None:
            if message.text is None or key_of(message.text) not in not_answers:
                _answer(message, opened.get(message.chat_id, ()), window, page)
        else:
            opened.setdefault(message.chat_id, []).append(
                _Open(message.msgid, message.chat_id, message.sender, message.msgtime))
    for open_ in (q for questions in opened.values() for q in questions):
        if open_.answer is not None and open_.id is None:
            asked[open_.msgid].update(_answer_columns(open_.answer))


def _answer(message: ArchiveMessage, candidates: Iterable[_Open], window: timedelta,
            page: _Page) -> None:
    for question in candidates:
        if question.answer is None and question.asker != message.sender and \
                question.asked_at <= message.msgtime <= question.asked_at + window:
            question.answer = message
            page.answered.append(question)
            return


QUESTION = GroupQuestion.__table__
_ANSWER_COLUMNS = ("answered_at", "answered_by", "answer_msgid", "answer_kind")


def _answer_columns(answer: ArchiveMessage) -> dict[str, Any]:
    return {"answered_at": answer.msgtime, "answered_by": answer.sender,
            "answer_msgid": answer.msgid, "answer_kind": answer.sender_kind}


async def _write(session: AsyncSession, page: _Page) -> None:
    if page.questions:
        # Core statements, not the ORM's bulk paths: a page's rows cost a fraction.
        statement = insert_for(session, QUESTION).on_conflict_do_nothing(
            index_elements=["msgid"])
        await session.execute(statement, page.questions)
    stored = [{"qid": q.id, **_answer_columns(q.answer)} for q in page.answered
              if q.id is not None and q.answer is not None]
    if stored:
        await session.execute(update(QUESTION).where(QUESTION.c.id == bindparam("qid")).values(
            {name: bindparam(name) for name in _ANSWER_COLUMNS}), stored)
    await _count_answers(session, [(q.chat_id, q.answer.sender, q.answer.msgtime)
                                   for q in page.answered
                                   if q.answer is not None and q.answer.sender_kind == CUSTOMER], 1)
    if page.hits:
        statement = insert_for(session, GroupKeywordDay)
        await session.execute(statement.on_conflict_do_update(
            index_elements=["day", "segment", "rule"],
            set_={"hits": GroupKeywordDay.hits + statement.excluded.hits}),
            [{"day": d, "segment": s, "rule": r, "hits": n} for (d, s, r), n in page.hits.items()])


async def _count_answers(session: AsyncSession, answers: list[tuple[str, str, datetime]],
                         sign: int) -> None:
    """Add (sign 1) or take back (-1) customers' answers, given as (chat, answerer, time)."""
    if not answers:
        return
    people = Counter((chat_id, userid) for chat_id, userid, _ in answers)
    days = Counter((chat_id, local_day(at), userid) for chat_id, userid, at in answers)
    speaker, speaker_day = Speaker.__table__, SpeakerDay.__table__
    await session.execute(
        update(speaker).where(speaker.c.chat_id == bindparam("c"),
                              speaker.c.userid == bindparam("u"))
        .values(answers=speaker.c.answers + bindparam("n")),
        [{"c": c, "u": u, "n": sign * n} for (c, u), n in people.items()])
    await session.execute(
        update(speaker_day).where(speaker_day.c.chat_id == bindparam("c"),
                                  speaker_day.c.day == bindparam("d"),
                                  speaker_day.c.userid == bindparam("u"))
        .values(answers=speaker_day.c.answers + bindparam("n")),
        [{"c": c, "d": d, "u": u, "n": sign * n} for (c, d, u), n in days.items()])


async def _take_back(session: AsyncSession, recalled: list[str]) -> None:
    """Recalled questions are dropped and recalled answers reopen their question; either way
    a customer's answer is uncounted."""
    rows = (await session.execute(
        select(GroupQuestion.id, GroupQuestion.msgid, GroupQuestion.chat_id,
               GroupQuestion.answered_by, GroupQuestion.answer_kind, GroupQuestion.answered_at)
        .where(or_(GroupQuestion.msgid.in_(recalled),
                   GroupQuestion.answer_msgid.in_(recalled))))).all()
    if not rows:
        return
    gone = set(recalled)
    dropped = [row.id for row in rows if row.msgid in gone]
    reopened = [row.id for row in rows if row.msgid not in gone]
    if dropped:
        await session.execute(delete(GroupQuestion).where(GroupQuestion.id.in_(dropped)))
    if reopened:
        await session.execute(update(GroupQuestion).where(GroupQuestion.id.in_(reopened))
                              .values(answered_at=None, answered_by=None, answer_msgid=None,
                                      answer_kind=None))
    await _count_answers(session, [(row.chat_id, row.answered_by, row.answered_at) for row in rows
                                   if row.answer_kind == CUSTOMER and row.answered_by
                                   and row.answered_at], -1)


# The ranking: what groups ask and nobody answers.

ALL = None  # a segment filter: every segment ("" is the groups without one)
RANKED_READ = 2000  # (segment, key) groups read per ranking, most asked first


@dataclass
class HotQuestion:
    """One unanswered question (its key) of one segment in a period."""

    segment: str  # "" for groups without a segment
    key: str
    count: int
    askers: int
    groups: int
    last_asked: datetime
    example: str | None = None  # the newest wording whose text is still kept
    covered_by: str | None = None  # the keywords.yaml rule that matches it now

    @property
    def suggested_keyword(self) -> str:
        return suggested_keyword(self.example) if self.example else self.key


async def hot_questions(session: AsyncSession, since: datetime, until: datetime | None,
                        now: datetime, answer_within_min: int, segment: str | None = ALL,
                        matcher: Matcher | None = None, per_segment: int = 20,
                        ) -> dict[str, list[HotQuestion]]:
    """Per segment, the questions asked in [since, until) that nobody answered within
    `answer_within_min` minutes (younger ones may still be), most asked first."""
    cutoff = now - timedelta(minutes=answer_within_min)
    conditions = [GroupQuestion.answered_at.is_(None), GroupQuestion.asked_at >= since,
                  GroupQuestion.asked_at < (cutoff if until is None else min(until, cutoff))]
    if segment is not None:
        conditions.append(GroupQuestion.segment.is_(None) if segment == ""
                          else GroupQuestion.segment == segment)
    found: dict[str, list[HotQuestion]] = {}
    for seg, key, count, askers, groups, last in await session.execute(
            select(GroupQuestion.segment, GroupQuestion.key, func.count(),
                   func.count(distinct(GroupQuestion.asker)),
                   func.count(distinct(GroupQuestion.chat_id)), func.max(GroupQuestion.asked_at))
            .where(*conditions).group_by(GroupQuestion.segment, GroupQuestion.key)
            .order_by(func.count().desc(), func.max(GroupQuestion.asked_at).desc())
            .limit(RANKED_READ)):
        shown = found.setdefault(seg or "", [])
        if len(shown) < per_segment:
            shown.append(HotQuestion(seg or "", key, count, askers, groups, last))
    await _examples(session, found, conditions)
    for question in (q for questions in found.values() for q in questions):
        rule = matcher.match(question.example or question.key) if matcher else None
        question.covered_by = rule.id if rule else None
    return found


async def _examples(session: AsyncSession, found: dict[str, list[HotQuestion]],
                    conditions: list[Any]) -> None:
    """Each question's newest wording still kept (texts go after the retention days)."""
    wanted = {(q.segment, q.key): q for questions in found.values() for q in questions}
    if not wanted:
        return
    rows = await session.execute(
        select(GroupQuestion.segment, GroupQuestion.key, ArchivedMessage.text)
        .join(ArchivedMessage, ArchivedMessage.msgid == GroupQuestion.msgid)
        .where(*conditions, GroupQuestion.key.in_({key for _, key in wanted}),
               ArchivedMessage.text.is_not(None))
        .order_by(GroupQuestion.asked_at.desc(), GroupQuestion.id.desc()))
    for seg, key, text in rows:
        question = wanted.get((seg or "", key))
        if question is not None and question.example is None:
            question.example = text


async def group_keyword_hits(session: AsyncSession, first_day: date, last_day: date,
                             segment: str | None = ALL) -> dict[str, int]:
    """Hits per keywords.yaml rule in group messages on the days [first_day, last_day]."""
    query = (select(GroupKeywordDay.rule, func.sum(GroupKeywordDay.hits))
             .where(GroupKeywordDay.day >= first_day, GroupKeywordDay.day <= last_day)
             .group_by(GroupKeywordDay.rule))
    if segment is not None:
        query = query.where(GroupKeywordDay.segment == segment)
    return {rule: int(hits or 0) for rule, hits in await session.execute(query) if hits}
