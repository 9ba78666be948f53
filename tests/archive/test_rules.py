"""The group rules step (app/archive/rules.py) on a real database: each kind of violation found
and missed, staff and robots exempt, flooding by the messages' own times, contributions from
the questions and newcomers steps, thresholds queueing exactly one owner task or operator alert
per crossing (the outbox rows), recalls voiding strikes, and a page read again adding nothing.
Pages go through what the reader does first (archive_message rows, a recall marked), then the
steps in their order: activity, questions, newcomers, group rules (built by its builder)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.archive.activity import count_page
from app.archive.flows import GroupRulesFlows, Thresholds, Violation
from app.archive.models import ArchivedMessage, MemberStrike
from app.archive.newcomers import note_intros
from app.archive.questions import track_questions
from app.archive.rules import RuleBook, build_rules_step, outbox_key
from app.engine.bot.env import Env
from app.engine.config import SHANGHAI
from app.engine.db import Database
from app.engine.outbox.models import OutboxMessage
from app.engine.wecom.archive_events import RECALL, SEND, ArchiveMessage
from app.flows import Flows, load_flows
from app.groups.models import CustomerGroup, GroupMember
from app.members.models import Member
from tests.conftest import OPERATOR, REPO, make_settings

FLOWS = load_flows(REPO / "sop_flows")
RULES = FLOWS.group_rules
BOOK = RuleBook(RULES)
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
SPAMMER, OTHER, STAFF, ROBOT = "wmSpammer01", "wmOther02", "zhangsan", "wbRobot01"


def hits(text: str, book: RuleBook = BOOK) -> list[str]:
    return [rule.id for rule in book.broken(text)]


@pytest.mark.parametrize(("text", "rules"), [
    ("淘宝店搜【好货优选】领券", ["other_platform"]),
    ("我在淘宝上买过一样的", []),  # a platform mentioned, no shop or link
    ("ＴＡＯＢＡＯ.ＣＯＭ 搜一下", ["other_platform"]),  # full width and case ignored
    ("看这里 https://shop.example.cn/sale?id=8848", ["outside_link"]),
    ("复制链接打开 https://m.tb.cn/h.5XyzAb 领券", ["other_platform", "outside_link"]),
    ("公众号文章 https://mp.weixin.qq.com/s/abc", []),  # on the allow list
    ("官网 www.example.com 和 https://help.example.com/x", []),  # a subdomain too
    ("https://example.com.evil.cn/x", ["outside_link"]),  # not a subdomain of example.com
    ("需要货源的联系我 13812345678", ["phone_number"]),
    ("电话 138-1234-5678", ["phone_number"]),
    ("+86 138 1234 5678", ["phone_number"]),
    ("订单号 213812345678901", []),  # inside a longer number
    ("编号 12345678901", []),  # not a mobile number
    ("加微信 abc123 拉你进群", ["wechat_id"]),
    ("vx：zhang_san", ["wechat_id"]),
    ("微信 welcome 大家", []),  # a word, not an id
    ("我在微信上hello大家", []),
    ("招人刷单，兼职日结", ["sensitive_words"]),
    ("这批纸巾我先订20箱，明天一起发", []),
])
def test_each_kind_hits_and_misses(text: str, rules: list[str]) -> None:
    assert hits(text) == rules


def test_own_pattern_and_allow_list() -> None:
    book = RuleBook(rules_with(
        Violation(id="qq", label="QQ号", kind="regex", points=1, pattern=r"qq\s*[:：]?\s*\d{5,}"),
        Violation(id="links", label="链接", kind="links", points=1,
                  allow_domains=["shop.example.cn"])))
    assert hits("加QQ: 123456", book) == ["qq"]
    assert hits("https://shop.example.cn/a 和 https://www.shop.example.cn/b", book) == []
    assert hits("https://example.cn/a", book) == ["links"]


def rules_with(*violations: Violation, **thresholds: int) -> GroupRulesFlows:
    return RULES.model_copy(update={
        "violations": list(violations) or RULES.violations,
        "thresholds": Thresholds(**(RULES.thresholds.model_dump() | thresholds))})


class Chat:
    """Messages as the archive gives them: seq and msgid in order, times from T0."""

    def __init__(self) -> None:
        self.seq = 0

    def say(self, sender: str, text: str | None, seconds: float = 0, chat_id: str = "wrA",
            msgtype: str = "text") -> ArchiveMessage:
        self.seq += 1
        return ArchiveMessage(self.seq, f"m{self.seq}", SEND, sender, chat_id,
                              (T0 + timedelta(seconds=seconds)).astimezone(UTC), msgtype, text)

    def recall(self, message: ArchiveMessage, seconds: float = 0) -> ArchiveMessage:
        self.seq += 1
        return ArchiveMessage(self.seq, f"m{self.seq}", RECALL, message.sender, message.chat_id,
                              (T0 + timedelta(seconds=seconds)).astimezone(UTC), "revoke", None,
                              message.msgid)


class Bot:
    def __init__(self, db: Database, rules: GroupRulesFlows = RULES,
                 operators: frozenset[str] = frozenset({OPERATOR, "op_bob"}),
                 agent_id: int | None = 1000002) -> None:
        self.db, self.rules = db, rules
        flows = Flows(**{**{f: getattr(FLOWS, f) for f in FLOWS.__dataclass_fields__},
                         "group_rules": rules})
        settings = make_settings(db.url, operators=operators, agent_id=agent_id)
        self.step = build_rules_step(Env(settings, flows, db))

    async def feed(self, messages: Sequence[ArchiveMessage], *, stored: bool = False) -> None:
        """One page: the reader's rows (unless `stored` already: a page read again), then the
        steps in their order."""
        now = max(m.msgtime for m in messages)
        async with self.db.unit_of_work() as session:
            if not stored:
                for m in messages:
                    session.add(ArchivedMessage(
                        msgid=m.msgid, seq=m.seq, chat_id=m.chat_id, sender=m.sender,
                        sender_kind=m.sender_kind, msgtime=m.msgtime, msgtype=m.msgtype,
                        text=m.text))
                await session.flush()
                recalled = [m.recalled_msgid for m in messages if m.action == RECALL]
                if recalled:
                    await session.execute(update(ArchivedMessage).where(
                        ArchivedMessage.msgid.in_(recalled)).values(recalled=True, text=None))
                await count_page(session, messages, now)
                await track_questions(session, messages, now, self.rules.questions, None)
                await note_intros(session, messages, now, self.rules.newcomers)
            await self.step(session, messages, now)

    async def strikes(self) -> list[MemberStrike]:
        async with self.db.reader() as session:
            return list(await session.scalars(select(MemberStrike).order_by(MemberStrike.id)))

    async def outbox(self) -> list[OutboxMessage]:
        async with self.db.reader() as session:
            return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    async with database.unit_of_work() as session:
        session.add_all([CustomerGroup(chat_id="wrA", name="华北门店1群", owner="owner_a"),
                         CustomerGroup(chat_id="wrB", name="华北门店2群", owner="owner_b")])
    yield database
    await database.dispose()


def summary(strikes: list[MemberStrike]) -> list[tuple[str, str, str, str, str | None]]:
    return [(s.msgid, s.userid, s.rule, s.status, s.action) for s in strikes]


async def test_strikes_customers_only(db: Database) -> None:
    bot, chat = Bot(db), Chat()
    page = [chat.say(SPAMMER, "需要货源的联系我 13812345678"),
            chat.say(STAFF, "有问题打我电话 13900001111 或加微信 shop_888"),
            chat.say(ROBOT, "官方店 https://m.tb.cn/h.abc"),
            chat.say(OTHER, "谢谢群主"),
            chat.say(OTHER, None, msgtype="image")]
    await bot.feed(page)
    strikes = await bot.strikes()
    assert summary(strikes) == [("m1", SPAMMER, "phone_number", "active", None)]
    strike = strikes[0]
    assert (strike.chat_id, strike.kind, strike.points, strike.at) == (
        "wrA", "violation", 2, page[0].msgtime)


async def test_a_page_read_again_adds_nothing(db: Database) -> None:
    bot, chat = Bot(db, rules_with(owner_task=2, operator_alert=100)), Chat()
    page = [chat.say(SPAMMER, "加微信 abc123 https://shop.example.cn/x", seconds=n)
            for n in range(6)]
    await bot.feed(page)
    before, sent = summary(await bot.strikes()), len(await bot.outbox())
    assert len(before) == 13 and sent == 1  # two rules a message and one burst; one crossing
    await bot.feed(page, stored=True)
    assert summary(await bot.strikes()) == before
    assert len(await bot.outbox()) == sent


async def test_flooding_by_message_time(db: Database) -> None:
    bot, chat = Bot(db), Chat()
    # Four lines, then (in a later page) a fifth within the minute: the fifth floods.
    await bot.feed([chat.say(SPAMMER, f"第{n}条", seconds=10 * n) for n in range(4)])
    assert await bot.strikes() == []
    await bot.feed([chat.say(SPAMMER, "手慢无", seconds=45),
                    chat.say(SPAMMER, "私聊我拿货", seconds=50)])
    assert summary(await bot.strikes()) == [("m5", SPAMMER, "flooding", "active", None)]
    # Sent one a minute (seq order as read, times spread out): no burst, however many.
    await bot.feed([chat.say(OTHER, f"第{n}条", seconds=600 + 61 * n) for n in range(8)])
    # Another group's lines do not add to these.
    await bot.feed([chat.say(OTHER, f"b{n}", seconds=1200 + n, chat_id="wrB") for n in range(3)]
                   + [chat.say(OTHER, f"a{n}", seconds=1200 + n) for n in range(3)])
    assert [s.msgid for s in await bot.strikes()] == ["m5"]


async def test_a_long_flood_is_one_strike_a_minute(db: Database) -> None:
    bot, chat = Bot(db), Chat()
    burst = [chat.say(SPAMMER, "最后100单", seconds=5 * n) for n in range(20)]  # 0 .. 95 s
    await bot.feed(burst[:9])
    await bot.feed(burst[9:])
    floods = [s for s in await bot.strikes() if s.rule == "flooding"]
    # Over the limit from the fifth line (20 s); the next strike a minute later (80 s).
    assert [s.msgid for s in floods] == [burst[4].msgid, burst[16].msgid]


async def test_owner_task_once_per_crossing(db: Database) -> None:
    bot, chat = Bot(db), Chat()  # phone_number is 2 points; owner_task at 5
    await bot.feed([chat.say(SPAMMER, f"联系我 1381234567{n}", seconds=60 * n)
                    for n in range(2)])
    assert await bot.outbox() == []
    crossing = chat.say(SPAMMER, "最后一次 13812345672 快来", seconds=200)
    await bot.feed([crossing, chat.say(SPAMMER, "再来 13812345673", seconds=260)])
    rows = await bot.outbox()
    assert [r.idempotency_key for r in rows] == [
        outbox_key("owner_task", crossing.msgid, "phone_number")]
    request = json.loads(rows[0].request)
    assert (request["touser"], request["agentid"], rows[0].kind) == ("owner_a", 1000002,
                                                                     "group_rules")
    content = request["text"]["content"]
    assert "华北门店1群" in content and "6 分" in content and "发布手机号" in content
    assert "138****5672" in content and "13812345672" not in content  # masked
    actions = {s.msgid: s.action for s in await bot.strikes()}
    assert actions == {"m1": None, "m2": None, crossing.msgid: "owner_task", "m4": None}
    # Points fall below (an operator dismisses two), then cross again: told again.
    async with db.unit_of_work() as session:
        await session.execute(update(MemberStrike).where(MemberStrike.msgid.in_(["m3", "m4"]))
                              .values(status="dismissed"))
    again = chat.say(SPAMMER, "13812345674", seconds=300)
    await bot.feed([again])
    assert [r.idempotency_key for r in await bot.outbox()][1:] == [
        outbox_key("owner_task", again.msgid, "phone_number")]


async def test_window_is_by_message_time(db: Database) -> None:
    bot, chat = Bot(db, rules_with(window_days=1)), Chat()
    await bot.feed([chat.say(SPAMMER, "13812345670"), chat.say(SPAMMER, "13812345671")])
    # A day later the first two have left the window: 2 points, not 6.
    await bot.feed([chat.say(SPAMMER, "13812345672", seconds=86400 + 10)])
    assert await bot.outbox() == []
    await bot.feed([chat.say(SPAMMER, "13812345673", seconds=86400 + 20),
                    chat.say(SPAMMER, "13812345674", seconds=86400 + 30)])
    assert [r.idempotency_key for r in await bot.outbox()] == [
        outbox_key("owner_task", "m5", "phone_number")]


async def test_operator_alert_for_repeat_offenders(db: Database) -> None:
    bot, chat = Bot(db), Chat()  # owner_task 5 in a group, operator_alert 10 in all groups
    page = [chat.say(SPAMMER, f"1381234567{n}", seconds=60 * n) for n in range(4)]  # A: 8
    page += [chat.say(SPAMMER, f"1391234567{n}", seconds=600 + 60 * n, chat_id="wrB")
             for n in range(3)]  # B: 2 4 6; all: 10 12 14
    await bot.feed(page)
    rows = {r.idempotency_key: json.loads(r.request) for r in await bot.outbox()}
    assert list(rows) == [outbox_key("owner_task", "m3", "phone_number"),
                          outbox_key("operator_alert", "m5", "phone_number"),
                          outbox_key("owner_task", "m7", "phone_number")]
    alert = rows[outbox_key("operator_alert", "m5", "phone_number")]
    assert alert["touser"] == f"{OPERATOR}|op_bob"
    assert "2 个群" in alert["text"]["content"] and "10 分" in alert["text"]["content"]
    assert rows[outbox_key("owner_task", "m7", "phone_number")]["touser"] == "owner_b"
    assert {s.msgid: s.action for s in await bot.strikes() if s.action} == {
        "m3": "owner_task", "m5": "operator_alert", "m7": "owner_task"}


async def test_nobody_told_without_the_app(db: Database) -> None:
    bot, chat = Bot(db, agent_id=None), Chat()
    await bot.feed([chat.say(SPAMMER, f"1381234567{n}") for n in range(3)])
    assert await bot.outbox() == []
    assert [s.action for s in await bot.strikes()] == [None, None, "owner_task"]


async def test_member_named_from_the_directory(db: Database) -> None:
    from app.directory.models import PlatformUser

    async with db.unit_of_work() as session:
        session.add_all([
            Member(external_userid=SPAMMER, staff_userid="lisi", channel="douyin",
                   platform_user_id="p1", phone="13700001234"),
            Member(external_userid=OTHER, staff_userid="lisi", channel="douyin",
                   phone="13700005678"),
            PlatformUser(platform_user_id="p1", phone="13700001234", name="王老板")])
    bot, chat = Bot(db, rules_with(owner_task=2)), Chat()
    await bot.feed([chat.say(SPAMMER, "13812345670"), chat.say(OTHER, "13812345671")])
    texts = [json.loads(r.request)["text"]["content"] for r in await bot.outbox()]
    assert "王老板" in texts[0] and "手机尾号 5678" in texts[1]
    assert "13700005678" not in texts[1]


async def test_recall_voids_strikes(db: Database) -> None:
    bot, chat = Bot(db), Chat()
    ad = chat.say(SPAMMER, "加微信 abc123 领样品")
    await bot.feed([ad])
    await bot.feed([chat.recall(ad, seconds=30)])
    assert summary(await bot.strikes()) == [(ad.msgid, SPAMMER, "wechat_id", "voided", None)]
    # Recalled in the page that brings it: never struck.
    second = chat.say(SPAMMER, "13812345678", seconds=40)
    await bot.feed([second, chat.recall(second, seconds=50)])
    assert [s.msgid for s in await bot.strikes()] == [ad.msgid]
    # Voided strikes do not count: 2 + 2 is below the owner's 5 despite the voided ones.
    await bot.feed([chat.say(SPAMMER, f"1381234567{n}", seconds=100 + n) for n in range(2)])
    assert await bot.outbox() == []


async def test_contributions_and_praise(db: Database) -> None:
    bot, chat = Bot(db, rules_with(praise=2)), Chat()
    async with db.unit_of_work() as session:
        session.add(GroupMember(chat_id="wrA", userid=OTHER, joined_at=T0.astimezone(UTC)))
    intro = chat.say(OTHER, "大家好，我是北京开便利店的小陈，请多关照", seconds=60)
    question = chat.say(SPAMMER, "这款纸巾多少钱一箱？", seconds=120)
    answer = chat.say(OTHER, "三十五一箱，量大可以谈", seconds=180)
    staff_answer = chat.say(STAFF, "已私信您", seconds=190)
    await bot.feed([intro, question, answer, staff_answer])
    strikes = await bot.strikes()
    assert sorted((s.msgid, s.rule, s.kind, s.points, s.action) for s in strikes) == [
        (intro.msgid, "intro", "contribution", 1, None),
        (answer.msgid, "answer", "contribution", 1, "praise")]
    assert await bot.outbox() == []  # praise sends nothing
    # An answer recalled is no contribution.
    await bot.feed([chat.recall(answer, seconds=200)])
    assert {s.msgid: s.status for s in await bot.strikes()}[answer.msgid] == "voided"
