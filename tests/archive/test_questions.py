"""Questions in groups (app/archive/questions.py): what asks, who answered in time (by the
messages' own times), customers' answers counted, recalls taken back, keyword hits per day and
segment, and the ranking of unanswered questions with keywords.yaml's coverage. Pages go through
what the reader does before the steps (archive_message rows, a recall marked) and the activity
step, on a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
import yaml
from sqlalchemy import select, update

from app.archive import store
from app.archive.activity import count_page
from app.archive.flows import NewcomerSettings, QuestionSettings
from app.archive.models import (
    ArchivedMessage,
    GroupKeywordDay,
    GroupQuestion,
    Speaker,
    SpeakerDay,
)
from app.archive.newcomers import note_intros
from app.archive.question_text import Asking, key_of, suggested_keyword
from app.archive.questions import (
    build_questions_step,
    group_keyword_hits,
    hot_questions,
    track_questions,
)
from app.engine.bot.env import Env
from app.engine.config import SHANGHAI
from app.engine.db import Database
from app.engine.wecom.archive_events import RECALL, SEND, ArchiveMessage
from app.flows import load_flows
from app.groups.models import CustomerGroup
from app.keywords.matcher import Matcher
from app.keywords.rules import Rule, load_keywords
from tests.conftest import REPO, make_settings

MATCHER = Matcher(load_keywords(REPO / "keywords.yaml").rules)
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)


RULES = QuestionSettings()  # the defaults: 30 minutes, 4 letters, the usual ask words


class Chat:
    """Messages as the archive gives them: seq and msgid in order, times from T0."""

    def __init__(self) -> None:
        self.seq = 0

    def say(self, chat_id: str, sender: str, text: str | None, minutes: float = 0,
            msgtype: str = "text") -> ArchiveMessage:
        self.seq += 1
        return ArchiveMessage(self.seq, f"m{self.seq}", SEND, sender, chat_id,
                              (T0 + timedelta(minutes=minutes)).astimezone(UTC),
                              msgtype, text)

    def recall(self, message: ArchiveMessage, minutes: float = 0) -> ArchiveMessage:
        self.seq += 1
        return ArchiveMessage(self.seq, f"m{self.seq}", RECALL, message.sender,
                              message.chat_id, (T0 + timedelta(minutes=minutes)).astimezone(UTC),
                              "revoke", None, message.msgid)


async def feed(db: Database, messages: Sequence[ArchiveMessage], rules: QuestionSettings = RULES,
               matcher: Matcher | None = MATCHER, intros: NewcomerSettings | None = None) -> None:
    """One page: the reader's rows, then the steps in their order (activity, questions, intros)."""
    now = max(m.msgtime for m in messages)
    async with db.unit_of_work() as session:
        messages = await store.store_messages(session, messages)  # as the reader does
        await count_page(session, messages, now)
        await track_questions(session, messages, now, rules, matcher)
        if intros is not None:
            await note_intros(session, messages, now, intros)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    async with database.unit_of_work() as session:
        for chat_id, segment in (("wrNorth", "shop_north"), ("wrNorth2", "shop_north"),
                                 ("wrOnline", "online"), ("wrLoose", None)):
            session.add(CustomerGroup(chat_id=chat_id, segment=segment, name=chat_id,
                                      owner="staff01", status="live"))
    yield database
    await database.dispose()


async def questions(db: Database) -> dict[str, GroupQuestion]:
    async with db.reader() as session:
        return {q.msgid: q for q in await session.scalars(select(GroupQuestion))}


async def answers(db: Database, userid: str) -> tuple[int, dict[date, int]]:
    """A person's answers in all (speaker rows) and per day (speaker_day rows)."""
    async with db.reader() as session:
        total = sum(await session.scalars(select(Speaker.answers).where(Speaker.userid == userid)))
        days: dict[date, int] = {}
        for day, n in await session.execute(
                select(SpeakerDay.day, SpeakerDay.answers).where(SpeakerDay.userid == userid)):
            days[day] = days.get(day, 0) + n
    return total, days


def test_what_asks_and_its_key() -> None:
    asking = Asking(RULES.ask_words, RULES.min_chars)
    assert asking.key("周末发货吗？") == "周末发货吗"
    # Width, case, spaces, punctuation, emoji and mentions do not make another question.
    assert asking.key("@小美\u2005周末 发货吗??😀") == asking.key("周末发货吗") == "周末发货吗"
    assert asking.key("VAT 发票怎么开") == asking.key("ｖａｔ发票怎么开！") == "vat发票怎么开"
    assert asking.key("在吗？") is None  # two letters: under min_chars
    assert asking.key("好的，收到，谢谢大家") is None  # no ask word
    assert asking.key(None) is None and asking.key("？？？？？") is None
    assert Asking(["请问"], 2).key("请问：几号") == "请问几号"  # the words are configurable
    assert len(key_of("多少钱？" * 100)) == 200
    assert suggested_keyword("@小美\u2005 周末 发货吗？？") == "周末 发货吗"


async def test_answers_by_staff_customer_and_robot_within_the_window(db: Database) -> None:
    chat = Chat()
    staff_q = chat.say("wrNorth", "wmAsk1", "周末发货吗？", 0)
    mine = chat.say("wrNorth", "wmAsk1", "在线等，挺急的", 0.5)  # the asker's own: no answer
    other_q = chat.say("wrNorth", "wmAsk5", "周末能发到河北吗", 1)
    staff_a = chat.say("wrNorth", "zhangsan", "周末正常发货", 10)
    customer_q = chat.say("wrOnline", "wmAsk2", "能开专票吗？", 0)
    customer_a = chat.say("wrOnline", "wmHelper", "可以的，找客服", 5)
    robot_q = chat.say("wrLoose", "wmAsk3", "样品怎么申请？", 0)
    robot_a = chat.say("wrLoose", "wbRobot01", "点击链接申请样品", 29.5)
    late_q = chat.say("wrNorth2", "wmAsk4", "有没有夏季新款", 0)
    late_a = chat.say("wrNorth2", "zhangsan", "有的", 31)  # after the 30 minutes
    await feed(db, [staff_q, customer_q, robot_q, late_q, mine, other_q, customer_a, staff_a,
                    robot_a, late_a])
    found = await questions(db)
    assert set(found) == {staff_q.msgid, other_q.msgid, customer_q.msgid, robot_q.msgid,
                          late_q.msgid}
    assert [(found[q.msgid].answer_msgid, found[q.msgid].answered_by,
             found[q.msgid].answer_kind) for q in (staff_q, customer_q, robot_q)] == [
        (staff_a.msgid, "zhangsan", "staff"), (customer_a.msgid, "wmHelper", "customer"),
        (robot_a.msgid, "wbRobot01", "robot")]
    assert found[staff_q.msgid].answered_at == staff_a.msgtime
    # One message answers one question: the earliest open one; the other stays open.
    assert found[other_q.msgid].answered_at is None
    assert found[late_q.msgid].answered_at is None
    assert (found[staff_q.msgid].segment, found[robot_q.msgid].segment) == ("shop_north", None)
    assert found[staff_q.msgid].key == "周末发货吗"
    assert found[staff_q.msgid].keyword_rule == "shipping"  # keywords.yaml covers it
    assert found[robot_q.msgid].keyword_rule is None
    assert await answers(db, "wmHelper") == (1, {T0.date(): 1})
    assert await answers(db, "zhangsan") == (0, {T0.date(): 0})  # staff: not counted


async def test_a_later_page_answers_a_stored_question(db: Database) -> None:
    chat = Chat()
    first = chat.say("wrNorth", "wmAsk1", "退货怎么操作？", 0)
    other = chat.say("wrNorth", "wmAsk2", "哪里可以看物流", 2)
    await feed(db, [first, other])
    # Another customer's question answers nobody; the next page's two answers close both.
    assert all(q.answered_at is None for q in (await questions(db)).values())
    a1 = chat.say("wrNorth", "wmHelper", "订单页面里申请", 12)
    a2 = chat.say("wrNorth", "wmHelper", "物流在我的订单", 13)
    await feed(db, [a1, a2])
    found = await questions(db)
    assert (found[first.msgid].answer_msgid, found[other.msgid].answer_msgid) == (a1.msgid,
                                                                                   a2.msgid)
    assert await answers(db, "wmHelper") == (2, {T0.date(): 2})


async def test_recalls_drop_a_question_or_reopen_it(db: Database) -> None:
    chat = Chat()
    q1 = chat.say("wrNorth", "wmAsk1", "周末发货吗？", 0)
    a1 = chat.say("wrNorth", "wmHelper", "周末也发", 3)
    q2 = chat.say("wrOnline", "wmAsk2", "能开专票吗？", 0)
    a2 = chat.say("wrOnline", "wmHelper", "可以开", 4)
    await feed(db, [q1, q2, a1, a2])
    assert await answers(db, "wmHelper") == (2, {T0.date(): 2})
    # The question recalled: gone, and its answer uncounted.
    await feed(db, [chat.recall(q1, 5)])
    assert set(await questions(db)) == {q2.msgid}
    assert await answers(db, "wmHelper") == (1, {T0.date(): 1})
    # The answer recalled: the question is open again, the answer uncounted.
    await feed(db, [chat.recall(a2, 6)])
    reopened = (await questions(db))[q2.msgid]
    assert (reopened.answered_at, reopened.answer_msgid, reopened.answered_by) == (None,) * 3
    assert await answers(db, "wmHelper") == (0, {T0.date(): 0})
    # A question and its recall in one page leave nothing.
    q3 = chat.say("wrNorth", "wmAsk3", "样品怎么申请？", 10)
    await feed(db, [q3, chat.recall(q3, 11)])
    assert q3.msgid not in await questions(db)


async def test_keyword_hits_per_day_and_segment(db: Database) -> None:
    chat = Chat()
    # 23:50 and 00:10 Asia/Shanghai: two days; staff and robots are not counted.
    late, early = (T0.replace(hour=23, minute=50) - T0).total_seconds() / 60, \
        (T0.replace(hour=23, minute=50) - T0).total_seconds() / 60 + 20
    await feed(db, [chat.say("wrNorth", "wmA", "什么时候发货", late),
                    chat.say("wrNorth2", "wmB", "快递到了", late),
                    chat.say("wrNorth", "wmC", "我要退货", early),
                    chat.say("wrOnline", "wmD", "发货了吗", early),
                    chat.say("wrLoose", "wmE", "物流好慢", early),
                    chat.say("wrNorth", "zhangsan", "今天发货", early),
                    chat.say("wrNorth", "wbRobot01", "发货时间见公告", early),
                    chat.say("wrNorth", "wmF", "[图片]", early, "image"),
                    chat.say("wrNorth", "wmG", "大家好", early)])
    async with db.reader() as session:
        rows = {(r.day, r.segment, r.rule): r.hits
                for r in await session.scalars(select(GroupKeywordDay))}
        day1, day2 = T0.date(), T0.date() + timedelta(days=1)
        assert rows == {(day1, "shop_north", "shipping"): 2, (day2, "shop_north", "refund"): 1,
                        (day2, "online", "shipping"): 1, (day2, "", "shipping"): 1}
        assert await group_keyword_hits(session, day1, day2) == {"shipping": 4, "refund": 1}
        assert await group_keyword_hits(session, day2, day2, "shop_north") == {"refund": 1}
        assert await group_keyword_hits(session, day1, day2, "") == {"shipping": 1}
    # A second page adds to the same days.
    await feed(db, [chat.say("wrNorth", "wmH", "发货", late + 1)])
    async with db.reader() as session:
        assert (await group_keyword_hits(session, day1, day1, "shop_north")) == {"shipping": 3}


async def test_unanswered_questions_ranked_per_segment(db: Database) -> None:
    chat = Chat()
    page = [chat.say("wrNorth", "wmA", "可以开VAT发票吗？", 0),
            chat.say("wrNorth2", "wmB", "可以开 ｖａｔ 发票吗", 1),
            chat.say("wrNorth", "wmA", "可以开vat发票吗??", 2),
            chat.say("wrNorth", "wmC", "周末发货吗？", 3),
            chat.say("wrOnline", "wmD", "可以开VAT发票吗？", 4),
            chat.say("wrLoose", "wmE", "样品怎么申请？", 5),
            chat.say("wrNorth", "wmF", "有没有夏季新款？", 100),
            chat.say("wrNorth", "zhangsan", "夏季新款下周到", 101)]  # answered: not hot
    await feed(db, page)
    await feed(db, [chat.say("wrLoose", "wmG", "样品怎么申请", 200)])  # too young yet
    # Texts past retention are gone; the key stands in for the example.
    async with db.unit_of_work() as session:
        await session.execute(update(ArchivedMessage).where(ArchivedMessage.msgid == "m6")
                              .values(text=None))
    now = T0 + timedelta(minutes=220)
    async with db.reader() as session:
        hot = await hot_questions(session, T0 - timedelta(days=7), None, now, 30,
                                  matcher=MATCHER)
    assert {s: [(q.key, q.count, q.askers, q.groups) for q in qs] for s, qs in hot.items()} == {
        "shop_north": [("可以开vat发票吗", 3, 2, 2), ("周末发货吗", 1, 1, 1)],
        "online": [("可以开vat发票吗", 1, 1, 1)], "": [("样品怎么申请", 1, 1, 1)]}
    vat, weekend = hot["shop_north"]
    assert vat.example == "可以开vat发票吗??" and vat.last_asked == page[2].msgtime
    assert (vat.covered_by, weekend.covered_by) == (None, "shipping")
    assert hot[""][0].example is None and hot[""][0].suggested_keyword == "样品怎么申请"
    # The suggestion is a keywords.yaml rule that answers the question.
    rule = Rule.model_validate({"id": "q1", "match": "contains",
                                "keywords": [vat.suggested_keyword], "answer": {"text": "可以"}})
    assert vat.suggested_keyword == "可以开vat发票吗"
    assert Matcher((rule,)).match("可以开VAT发票吗？") == rule
    async with db.reader() as session:
        north = await hot_questions(session, T0 - timedelta(days=7), None, now, 30,
                                    "shop_north")
        loose = await hot_questions(session, T0 - timedelta(days=7), None, now, 30, "")
        before = await hot_questions(session, T0 - timedelta(days=7), T0 + timedelta(minutes=2),
                                     now, 30)
    assert list(north) == ["shop_north"] and list(loose) == [""]
    assert [(q.key, q.count) for q in before["shop_north"]] == [("可以开vat发票吗", 2)]
    assert yaml.safe_load(f"- keywords: [{vat.suggested_keyword}]")  # plain YAML text


async def test_the_step_built_from_the_flows(db: Database, db_url: str) -> None:
    flows = load_flows(REPO / "sop_flows")
    env = Env(settings=make_settings(db_url), db=db, flows=SimpleNamespace(
        group_rules=SimpleNamespace(questions=QuestionSettings(ask_words=["请问"], min_chars=2)),
        routing=flows.routing))
    step = build_questions_step(env)
    chat = Chat()
    asked = chat.say("wrNorth", "wmA", "请问几号发货", 0)
    async with db.unit_of_work() as session:
        await step(session, [asked, chat.say("wrNorth", "wmB", "好吗？", 1)], T0)
    [question] = (await questions(db)).values()
    assert (question.msgid, question.keyword_rule) == (asked.msgid, "shipping")


async def test_a_greeting_or_thanks_answers_nothing(db: Database) -> None:
    chat = Chat()
    asked = chat.say("wrNorth", "wmAsk", "周末发货吗？", 0)
    await feed(db, [asked, chat.say("wrNorth", "wmOther", "早上好！", 1),
                    chat.say("wrNorth", "wmOther", "谢谢", 2)])
    assert (await questions(db))[asked.msgid].answered_at is None
    await feed(db, [chat.say("wrNorth", "wmHelper", "发的", 3)])  # short, but an answer
    assert (await questions(db))[asked.msgid].answered_by == "wmHelper"
