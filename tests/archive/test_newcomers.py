"""Self-introductions (app/archive/newcomers.py): a joiner's first message in the group, within
the days after joining and long enough, introduces them; a later message never does; a
recalled one is undone. Then who has not introduced themselves, per group."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app.archive.activity import count_page
from app.archive.flows import NewcomerSettings
from app.archive.models import ArchiveReader, Speaker
from app.archive.newcomers import (
    build_newcomers_step,
    introduced,
    not_introduced,
    not_introduced_counts,
)
from app.engine.bot.env import Env
from app.engine.db import Database
from app.groups.models import CustomerGroup, GroupMember
from app.groups.newcomers import newcomer_lines
from tests.archive.test_questions import T0, Chat, feed
from tests.conftest import make_settings

RULES = NewcomerSettings()  # 3 days, 6 letters
JOINED = {"wmNew": -60, "wmShort": -60, "wmOld": -5 * 24 * 60, "wmTwice": -60,
          "wmPicture": -60, "wmLater": -60, "wmSilent": -30, "wmQuick": 5, "wmGone": -60,
          "wmSouth": -60, "zhangsan": -60}


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    async with database.unit_of_work() as session:
        for chat_id, segment in (("wrNorth", "shop_north"), ("wrSouth", "online")):
            session.add(CustomerGroup(chat_id=chat_id, segment=segment, name=chat_id,
                                      owner="zhangsan", status="live"))
        for userid, minutes in JOINED.items():
            session.add(GroupMember(
                chat_id="wrSouth" if userid == "wmSouth" else "wrNorth", userid=userid,
                type=1 if userid == "zhangsan" else 2, joined_at=T0 + timedelta(minutes=minutes),
                left_at=T0 if userid == "wmGone" else None))
    yield database
    await database.dispose()


async def intros(db: Database) -> dict[str, str | None]:
    async with db.reader() as session:
        return {s.userid: s.intro_msgid for s in await session.scalars(select(Speaker))}


async def test_a_first_message_soon_after_joining_introduces(db: Database) -> None:
    chat = Chat()
    new = chat.say("wrNorth", "wmNew", "大家好，我是广州的小美，做童装批发", 0)
    short = chat.say("wrNorth", "wmShort", "大家好！！", 1)  # 3 letters: under min_chars
    old = chat.say("wrNorth", "wmOld", "大家好，我是郑州的实体店主，做女装", 2)  # 5 days on
    hello = chat.say("wrNorth", "wmTwice", "你好", 3)
    second = chat.say("wrNorth", "wmTwice", "我是杭州的实体店主，主营女装和童装", 4)
    picture = chat.say("wrNorth", "wmPicture", None, 5, "image")
    staff = chat.say("wrNorth", "zhangsan", "欢迎各位新朋友加入本群", 6)
    # Five minutes before sopbot recorded the join: still their introduction.
    quick = chat.say("wrNorth", "wmQuick", "我是成都的小店主，做零食", 0)
    await feed(db, [new, short, old, hello, second, picture, staff, quick], intros=RULES)
    assert await intros(db) == {"wmNew": new.msgid, "wmShort": None, "wmOld": None,
                                "wmTwice": None, "wmPicture": None, "zhangsan": None,
                                "wmQuick": quick.msgid}
    # A first message on an earlier page: a later long one is not an introduction.
    await feed(db, [chat.say("wrNorth", "wmLater", "嗯嗯", 10)], intros=RULES)
    await feed(db, [chat.say("wrNorth", "wmLater", "我是深圳的网店店主，做饰品", 11),
                    chat.say("wrNorth", "wmNew", "再介绍一下：我们店在白马服装城", 12)],
               intros=RULES)
    found = await intros(db)
    assert found["wmLater"] is None and found["wmNew"] == new.msgid
    # A recalled introduction is none.
    await feed(db, [chat.recall(new, 13)], intros=RULES)
    assert (await intros(db))["wmNew"] is None


async def test_who_has_not_introduced_themselves(db: Database) -> None:
    chat = Chat()
    await feed(db, [chat.say("wrNorth", "wmNew", "大家好，我是广州的小美，做童装批发", 0),
                    chat.say("wrNorth", "wmShort", "在吗", 1),
                    chat.say("wrSouth", "wmSouth", "大家好，我是南京的网店店主", 2)],
               intros=RULES)
    since, until = T0 - timedelta(days=1), T0 + timedelta(days=1)
    async with db.reader() as session:
        missing = await not_introduced(session, since, until)
        north = await not_introduced(session, since, until, "shop_north")
        south = await not_introduced(session, since, until, "online")
        counts = await not_introduced_counts(session, ["wrNorth", "wrSouth"])
        recent = await not_introduced_counts(session, ["wrNorth"], T0 - timedelta(minutes=45))
        done = await introduced(session, ["wrNorth", "wrSouth"])
    # Staff, those who left and those outside the days are not listed; joining order.
    expected = ["wmShort", "wmTwice", "wmPicture", "wmLater", "wmSilent", "wmQuick"]
    assert {c: [m.userid for m in ms] for c, ms in missing.items()} == {"wrNorth": expected}
    assert list(north) == ["wrNorth"] and south == {}
    assert counts == {"wrNorth": 7}  # wmOld too: joined five days ago, never introduced
    assert recent == {"wrNorth": 2}  # wmSilent and wmQuick joined in the last 45 minutes
    assert done == {("wrNorth", "wmNew"), ("wrSouth", "wmSouth")}


async def test_the_step_built_from_the_flows(db: Database, db_url: str) -> None:
    env = Env(settings=make_settings(db_url), db=db, flows=SimpleNamespace(
        group_rules=SimpleNamespace(newcomers=NewcomerSettings(intro_within_days=1, min_chars=2))))
    step = build_newcomers_step(env)
    chat = Chat()
    messages = [chat.say("wrNorth", "wmShort", "你好", 0),
                chat.say("wrNorth", "wmOld", "大家好，我是郑州的实体店主", 1)]
    async with db.unit_of_work() as session:
        await count_page(session, messages, T0)
        await step(session, messages, T0)
    found = await intros(db)
    assert found == {"wmShort": messages[0].msgid, "wmOld": None}


async def test_the_owners_newcomer_list_says_who_has_not_introduced_themselves(
        db: Database) -> None:
    chat = Chat()
    await feed(db, [chat.say("wrNorth", "wmNew", "大家好，我是广州的小美，做童装批发", 0),
                    chat.say("wrNorth", "wmShort", "在吗", 1)], intros=RULES)
    day = T0.date()

    async def owners_list() -> list[str]:
        async with db.reader() as session:
            return await newcomer_lines(session, day, "shop_north", {})
    # No archive reader has run here: the list says nothing about introductions.
    plain = await owners_list()
    assert plain[0] == "wrNorth (shop_north) wrNorth: 7 newcomer(s) on 2026-12-01"
    assert not any("introduced" in line for line in plain)
    async with db.unit_of_work() as session:
        session.add(ArchiveReader(corp_id="wwcorp"))
    told = await owners_list()
    assert told[0] == ("wrNorth (shop_north) wrNorth: 7 newcomer(s) on 2026-12-01, "
                       "6 not introduced yet")
    marks = {line.split()[1]: line.split(" · ")[1] for line in told[1:]}
    assert marks["wmNew"] == "introduced"
    assert marks["wmShort"] == marks["wmSilent"] == "not introduced yet"
    assert "wmGone" not in marks and "zhangsan" not in marks and "wmOld" not in marks
