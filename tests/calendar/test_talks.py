"""Talks (sop_flows/talks.yaml) with a moving clock: the posting job is called every half hour
as the scheduler would, and what it queued is read back. A 嘉宾分享会's four posts across two
days with one topic item, WeCom's one mass message per group a day kept together with the
calendar's posts (the others reach the owners at their times), a 新人答疑会's personal
invitations to last week's joiners only, the preview, and a bad talks.yaml named by file and
line."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.calendar import content
from app.calendar.models import CalendarPost, ContentItem, GroupDay
from app.calendar.planner import MASS_TASK, OWNER_REMINDER
from app.calendar.posting import post_due
from app.calendar.preview import preview
from app.engine.config import SHANGHAI
from app.engine.db import Database
from app.engine.outbox.models import OutboxMessage
from app.engine.yamlconf import ConfigFileError
from app.flows import load_flows
from app.groups.models import CustomerGroup, GroupMember
from app.members.models import Member
from tests.conftest import REPO

FLOWS = load_flows(REPO / "sop_flows")
TALKS = FLOWS.talks
# The sample calendar under its default policy (remind_owner), without the staff robot.
CALENDAR = FLOWS.calendar.model_copy(update={"internal": {}})
MONDAY = datetime(2026, 11, 30, tzinfo=SHANGHAI)
NORTH = (("wrN1", "zhangsan"), ("wrN2", "zhangsan"), ("wrN3", "lisi"))


def at(day: int, hhmm: str) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return MONDAY + timedelta(days=day, hours=hours, minutes=minutes)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    async with database.unit_of_work() as session:
        for chat_id, owner in NORTH:
            session.add(CustomerGroup(chat_id=chat_id, owner=owner, segment="shop_north",
                                      name=f"群{chat_id}", member_count=80, status="live",
                                      created_at=MONDAY - timedelta(days=60),
                                      updated_at=MONDAY))
        for column in ("new_arrivals", "star_picks", "endorsement"):
            for n in range(6):
                await content.add(session, column, f"{column}{n}", "", None, MONDAY)
        await content.add(session, "guest_talk", "本周嘉宾：郑州童装店主王姐", "聊聊换季备货",
                          "https://example.com/talk/1", MONDAY)
        await content.add(session, "guest_talk", "下周嘉宾：成都阿杰", "", None, MONDAY)
    yield database
    await database.dispose()


async def run_clock(db: Database, first: datetime, last: datetime) -> None:
    """The posting job at :05 and :35 of every hour (each post is due within its grace)."""
    moment = first
    while moment <= last:
        await post_due(db, CALENDAR, moment, 1000002, FLOWS.onboarding, talks=TALKS)
        moment += timedelta(minutes=30)


async def rows(db: Database, model: type) -> list:  # type: ignore[type-arg]
    async with db.reader() as session:
        return list(await session.scalars(select(model).order_by(model.id)))


async def sent(db: Database) -> dict[str, dict]:  # type: ignore[type-arg]
    return {r.idempotency_key: json.loads(r.request) for r in await rows(db, OutboxMessage)}


async def test_a_guest_talk_runs_its_sequence_across_two_days_within_the_daily_cap(
        db: Database) -> None:
    await run_clock(db, at(1, "00:05"), at(3, "23:35"))  # Tuesday to Thursday
    posts = await rows(db, CalendarPost)
    # At 00:05 Monday is still planned (its grace): its posts, long past, are missed.
    assert {p.reason for p in posts if p.day == "2026-11-30"} == {"missed: later than the grace"}
    posts = [p for p in posts if p.day != "2026-11-30"]
    talk = [(p.day, f"{p.at.astimezone(SHANGHAI):%H:%M}", p.transport, p.target)
            for p in posts if "talk.guest_shops" in p.posts]
    # The announcement the day before is Tuesday's one mass task (the highest priority); on
    # Wednesday the opening is, and the reminder goes to the owners at 19:00; on Thursday the
    # calendar's 今日上新 is the task and the summary reaches the owners at 10:00.
    assert talk == [
        ("2026-12-01", "12:00", MASS_TASK, "lisi"), ("2026-12-01", "12:00", MASS_TASK, "zhangsan"),
        ("2026-12-02", "19:00", OWNER_REMINDER, "lisi"),
        ("2026-12-02", "19:00", OWNER_REMINDER, "zhangsan"),
        ("2026-12-02", "20:00", MASS_TASK, "lisi"), ("2026-12-02", "20:00", MASS_TASK, "zhangsan"),
        ("2026-12-03", "10:00", OWNER_REMINDER, "lisi"),
        ("2026-12-03", "10:00", OWNER_REMINDER, "zhangsan")]
    assert all(p.status == "queued" for p in posts), [p.reason for p in posts]
    # One mass task per owner a day, talks and calendar together, and each group served once.
    tasks = Counter((p.day, p.target) for p in posts if p.transport == MASS_TASK)
    assert tasks == {(f"2026-12-0{d}", owner): 1 for d in (1, 2, 3)
                     for owner in ("lisi", "zhangsan")}
    served = Counter((g.day, g.chat_id) for g in await rows(db, GroupDay))
    assert served == {(f"2026-12-0{d}", chat): 1 for d in (1, 2, 3) for chat, _ in NORTH}
    thursday = [p for p in posts if p.day == "2026-12-03" and p.transport == MASS_TASK]
    assert {p.posts for p in thursday} == {"slot0"}  # 今日上新

    calls = await sent(db)
    texts = {key.split(":")[3]: call for key, call in calls.items() if "zhangsan" in key
             and "guest_shops" in key}
    announce = texts["talk.guest_shops.announce"]
    assert announce["chat_type"] == "group" and announce["chat_id_list"] == ["wrN1", "wrN2"]
    assert announce["text"]["content"].startswith(
        "【嘉宾分享会预告】明晚（周三）20:00，本周嘉宾：郑州童装店主王姐\n聊聊换季备货")
    assert "本周嘉宾：郑州童装店主王姐" in texts["talk.guest_shops.opening"]["text"]["content"]
    reminder = texts["talk.guest_shops.reminder"]
    assert reminder["msgtype"] == "text" and reminder["touser"] == "zhangsan"
    assert reminder["text"]["content"].startswith("请在「群wrN1、群wrN2」中发送以下内容")
    summary = texts["talk.guest_shops.summary"]["text"]["content"]
    assert "昨晚的「本周嘉宾：郑州童装店主王姐」" in summary
    assert "https://example.com/talk/1" in summary
    # One item per occurrence: its four posts used the first, the second waits for next week.
    items = {i.title: i.used_for for i in await rows(db, ContentItem) if i.column_name ==
             "guest_talk"}
    assert items == {"本周嘉宾：郑州童装店主王姐": "talk:guest_shops:20261202",
                     "下周嘉宾：成都阿杰": None}
    # The newcomers' Q&A of Tuesday 20:00 ran beside it: reminder and opening to the owners.
    qa = [(p.day, f"{p.at.astimezone(SHANGHAI):%H:%M}", p.transport) for p in posts
          if "qa_shop_north" in p.posts and p.target == "lisi"]
    assert qa == [("2026-12-01", "19:00", OWNER_REMINDER), ("2026-12-01", "20:00", OWNER_REMINDER),
                  ("2026-12-02", "10:00", OWNER_REMINDER)]
    before = len(calls)
    await run_clock(db, at(3, "00:05"), at(3, "23:35"))  # the same day again: nothing new
    assert len(await sent(db)) == before


async def test_the_newcomers_qa_invites_last_weeks_joiners_only(db: Database) -> None:
    joined = (("wmRecent", "staff01", at(-3, "15:00"), None),  # Friday: invited
              ("wmFirstDay", "staff01", at(-6, "00:05"), None),  # 7 days ago: the first day
              ("wmOther", "staff02", at(0, "09:00"), None),  # today, another staff member
              ("wmOld", "staff01", at(-7, "12:00"), None),  # 8 days ago: not last week's
              ("wmLeft", "staff01", at(-2, "10:00"), at(-1, "10:00")),  # left again
              ("wmLater", "staff01", at(0, "20:10"), None))  # after the announcement
    async with db.unit_of_work() as session:
        for userid, staff, when, left in joined:
            session.add(GroupMember(chat_id="wrN1", userid=userid, type=2, joined_at=when,
                                    left_at=left))
            session.add(Member(external_userid=userid, staff_userid=staff, channel="app"))
        session.add(GroupMember(chat_id="wrN3", userid="wmStranger", type=2,
                                joined_at=at(-1, "10:00")))  # never a member of the funnel
        session.add(GroupMember(chat_id="wrN3", userid="staff09", type=1,
                                joined_at=at(-1, "10:00")))  # staff are not newcomers
    await run_clock(db, at(0, "19:35"), at(0, "21:05"))  # Monday: the announcement at 20:00
    invitations = {key: call for key, call in (await sent(db)).items() if "invite" in key}
    assert {(c["sender"], tuple(c["external_userid"])) for c in invitations.values()} == {
        ("staff01", ("wmFirstDay", "wmRecent")), ("staff02", ("wmOther",))}
    call = next(c for c in invitations.values() if c["sender"] == "staff01")
    assert call["chat_type"] == "single" and "chat_id_list" not in call
    assert call["text"]["content"].startswith(
        "您好！欢迎加入「群wrN1」。明晚（周二）20:00群里有新人答疑会，运营小周会讲清楚")
    recorded = [(p.transport, p.target, p.posts) for p in await rows(db, CalendarPost)
                if p.transport == "invitation"]
    assert sorted(recorded) == [("invitation", "staff01", "talk.qa_shop_north.invite"),
                                ("invitation", "staff02", "talk.qa_shop_north.invite")]
    # The group's own announcement went as Monday's mass task, with the weekly calendar.
    monday = [p for p in await rows(db, CalendarPost) if p.transport == MASS_TASK]
    assert {p.posts for p in monday} == {"talk.qa_shop_north.announce"}
    task = next(c for k, c in (await sent(db)).items() if k == monday[0].key)
    assert task["text"]["content"].startswith("【新人答疑会】明晚（周二）20:00，运营小周在群里")
    assert "本周活动：周二 20:00 新人答疑会" in task["text"]["content"]
    await run_clock(db, at(0, "20:05"), at(0, "20:25"))  # again: nobody invited twice
    assert len([k for k in await sent(db) if "invite" in k]) == 2

    async with db.reader() as session:  # the preview shows the invitations too
        lines = await preview(session, CALENDAR, MONDAY.date(), 1, "shop_north",
                              FLOWS.onboarding, TALKS)
    assert "talk qa_shop_north: 新人答疑会 every 周二 20:00, shop_north, host 运营小周, topic " \
           "'进货、拿样、发货、售后和平台功能'" in lines
    assert ("    20:00 invitation from staff01 (wrN1: 2 newcomer(s)): "
            "您好！欢迎加入「群wrN1」。明晚（周二）20…") in lines
    assert any(line.startswith("    20:00 mass task → zhangsan (2 group(s)): 【新人答疑会】明晚")
               for line in lines)


@pytest.mark.parametrize(("change", "line", "message"), [
    (("segments: [shop_north]\n    weekday: 2", "segments: [shop_north, mars]\n    weekday: 2"),
     "segments: [shop_north, mars]", "talks.qa_shop_north.segments: unknown segment 'mars'"),
    (("topic: {column: guest_talk}", "topic: {column: podcasts}"),
     "topic: {column: podcasts}", "talks.guest_shops.topic: unknown column 'podcasts'"),
    (("    weekday: 3\n", "    weekday: 8\n"), "    weekday: 8",
     "talks.guest_shops.weekday: Input should be less than or equal to 7"),
    (("host: {guest: 本期嘉宾}", "host: {guest: 本期嘉宾, staff: wang}"),
     "host: {guest: 本期嘉宾, staff: wang}", "a host is either staff"),
    (("reminder: |-\n        【{talk}】还有", "reminder: |-\n        【{talks}】还有"),
     "reminder: |-\n        【{talks}】还有", "unknown placeholder {talks}"),
])
def test_a_bad_talks_file_is_reported_with_file_and_line(
        tmp_path: Path, change: tuple[str, str], line: str, message: str) -> None:
    flows = tmp_path / "sop_flows"
    shutil.copytree(REPO / "sop_flows", flows)
    path = flows / "talks.yaml"
    text = path.read_text(encoding="utf-8")
    assert change[0] in text
    bad = text.replace(change[0], change[1], 1)
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_flows(flows)
    assert info.value.path == path and message in info.value.message, str(info.value)
    expected = bad[:bad.index(line)].count("\n") + 1
    assert info.value.line == expected, str(info.value)


def test_a_newcomers_qa_needs_its_invitation(tmp_path: Path) -> None:
    flows = tmp_path / "sop_flows"
    shutil.copytree(REPO / "sop_flows", flows)
    (flows / "talks.yaml").write_text(
        "talks:\n  qa:\n    kind: newcomer_qa\n    title: 新人答疑会\n    segments: [online]\n"
        "    weekday: 5\n    time: '20:00'\n    host: {staff: staff02}\n"
        "    topic: {text: 选品}\n    texts: {announce: a, reminder: r, opening: o, summary: s}\n",
        encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_flows(flows)
    assert info.value.path == flows / "talks.yaml" and info.value.line == 3
    assert "a newcomer_qa talk has texts.invite" in info.value.message
    (flows / "talks.yaml").unlink()  # no talks.yaml: no talks, nothing else changes
    assert load_flows(flows).talks.talks == {}


def test_a_talks_announcement_is_not_called_an_operators_announcement() -> None:
    """A group's own task that carries an onboarding action and a talk's announcement
    (talk.X.announce) read as "announcement + onboarding" in the preview (review)."""
    from app.calendar.planner import Delivery
    from app.calendar.posts import Post
    from app.calendar.preview import own_kind

    at = datetime(2026, 12, 1, 12, 0, tzinfo=SHANGHAI)
    posts = (Post(at, "sop.7d.d3", 10, text="x"), Post(at, "talk.guest_shops.announce", 8))
    assert own_kind(Delivery(at, MASS_TASK, "lisi", "shop_north", posts, ("wr1",), "wr1")) \
        == "onboarding + talk"
    operator = (Post(at, "announce12", 9, text="y"),)
    assert own_kind(Delivery(at, MASS_TASK, "lisi", "shop_north", operator)) == "announcement"
