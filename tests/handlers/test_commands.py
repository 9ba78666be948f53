"""Operator command handlers (handlers/commands.py) on the harness: the real router and flows
on a real database, the passive reply and the outbox rows they leave."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta

import pytest

from app.calendar import content
from app.calendar.posting import post_due
from app.calendar.preview import preview
from app.calendar.talks import TalkFlows
from app.engine.config import SHANGHAI
from app.engine.db import utcnow
from app.funnel import labels
from app.funnel import service as funnel
from app.groups.models import CustomerGroup
from app.members import service as members
from app.members.models import Member
from app.verify.models import Verification
from tests.conftest import CORP_ID, OPERATOR
from tests.handlers.harness import Bot, member_text

# A day to come (as the worker's clock would run ahead of time): the first Monday at least two
# days ahead. Always a Monday: the calendar's talks (新人答疑会 on Tuesdays) change what a day
# plans, and a day taken "two days ahead" failed the tests when it fell on a Tuesday.
_AHEAD = datetime.now(SHANGHAI).date() + timedelta(days=2)
DAY = datetime.combine(_AHEAD + timedelta(days=-_AHEAD.weekday() % 7), time(0), SHANGHAI)
LATE = DAY + timedelta(hours=23)


async def handle_text(bot: Bot, content: str, sender: str = OPERATOR) -> dict:
    """An app message from `sender`: the handler's name and the passive reply's fields."""
    handled = await bot.feed(member_text(content, sender))
    return {"handler": handled.handler, **handled.reply_fields}


async def test_help_lists_commands_for_operators(bot: Bot) -> None:
    reply = await handle_text(bot, "/help")
    assert reply["handler"] == "handlers.commands.answer_help"
    assert reply["Content"] == bot.flows.commands.help
    assert reply["ToUserName"] == OPERATOR and reply["FromUserName"] == CORP_ID


async def test_full_width_slash_and_case_are_accepted(bot: Bot) -> None:
    reply = await handle_text(bot, "／HELP")
    assert reply["handler"] == "handlers.commands.answer_help"


async def test_non_operator_is_refused_for_every_command(bot: Bot) -> None:
    for command in ("/help", "/stats 7d", "/nonsense"):
        reply = await handle_text(bot, command, sender="intruder")
        assert reply["handler"] == "handlers.commands.refuse_non_operator"
        assert reply["Content"] == bot.flows.commands.not_operator


async def test_unknown_command_names_the_command(bot: Bot) -> None:
    reply = await handle_text(bot, "/launch rockets")
    assert reply["handler"] == "handlers.commands.answer_unknown_command"
    assert reply["Content"] == "未知命令：/launch。发送 /help 查看可用命令。"


async def test_plain_text_is_not_a_command(bot: Bot) -> None:
    reply = await handle_text(bot, "help")
    assert reply == {"handler": None}


async def test_stats_answers_the_funnel_and_refuses_bad_arguments(bot: Bot) -> None:
    async with bot.session() as session:
        await funnel.record(session, "click", "click:1", utcnow(), channel="app", slot="my_page")
    reply = await handle_text(bot, "/stats channel 7d")
    assert reply["handler"] == "handlers.commands.answer_stats"
    # Channels and slots by their labels in funnel.yaml, as `sopbot funnel` shows them.
    assert "channel = app (App 内广告位)" in reply["Content"] and "click" in reply["Content"]
    slots = (await handle_text(bot, "/stats slot"))["Content"]
    assert "slot = my_page (“我的”页)" in slots
    bad = await handle_text(bot, "/stats colour")
    assert bad["Content"].startswith("用法：/stats")


async def test_a_long_answer_goes_out_as_messages(bot: Bot,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Forty lines, and one line longer than a whole message.
    long_report = "\n".join([*(f"第{n}行：" + "数据" * 40 for n in range(40)), "长" * 1000])

    async def long_stats(*_args: object) -> str:
        return long_report
    monkeypatch.setattr(labels, "command_report", long_stats)
    reply = await handle_text(bot, "/stats")
    assert reply["Content"] == bot.flows.commands.sent_separately
    parts = await bot.outbox(kind="operator_answer")
    assert len(parts) >= 2
    assert {(p.api, p.body["touser"], p.body["agentid"]) for p in parts} == {
        ("message/send", OPERATOR, bot.settings.agent_id)}
    texts = [p.body["text"]["content"] for p in parts]
    assert all(len(t.encode()) <= 2048 for t in texts)
    count = len(texts)
    assert [t.split(" ", 1)[0] for t in texts] == [f"({n}/{count})" for n in range(1, count + 1)]
    joined = "\n".join(t.split(" ", 1)[1] for t in texts)
    assert joined.replace("\n", "") == long_report.replace("\n", "")  # nothing lost


async def test_review_lists_and_decides_and_a_stale_decision_changes_nothing(
        bot: Bot) -> None:
    async with bot.session() as session:
        member = await members.create(session, utcnow(), "test", external_userid="wmRev",
                                      staff_userid="zhangsan", channel="organic",
                                      identity_type="physical_shop", region="北京",
                                      status="submitted")
        session.add(Verification(member_id=member.id, phone="13800138000", photos=[],
                                 identity_type="physical_shop", region="北京",
                                 status="pending", submitted_at=utcnow()))
    listed = await handle_text(bot, "/review")
    assert listed["Content"].startswith("待审核 1 个：")
    assert "#1 实体店 北京 138****8000" in listed["Content"]
    assert "13800138000" not in listed["Content"]
    approved = await handle_text(bot, "/review approve 1")
    assert approved["Content"] == "审核 #1 已处理：通过。"
    again = await handle_text(bot, "/review reject 1 照片不清")
    assert again["Content"] == f"审核 #1 已由 wecom:{OPERATOR} 处理为 通过，未作更改。"
    assert (await handle_text(bot, "/review approve 99"))["Content"] == "找不到审核 #99。"
    assert (await handle_text(bot, "/review reject 1"))["Content"].startswith("用法：")
    assert (await handle_text(bot, "/review approve ²"))["Content"].startswith("用法：")
    [row] = await bot.rows(Verification)
    assert (row.status, row.reviewer) == ("approved", f"wecom:{OPERATOR}")
    [member] = await bot.rows(Member)
    assert member.status == "routed" and member.segment == "shop_north"
    assert (await handle_text(bot, "/review"))["Content"] == "目前没有待审核的认证。"


async def test_announce_creates_one_task_per_group_owner(bot: Bot) -> None:
    now = utcnow()
    bot.clock.now = LATE  # online's 10:00 slot is long past: nothing planned
    async with bot.session() as session:
        for chat_id, owner, segment in (("wr1", "zhangsan", "online"), ("wr2", "lisi", "online"),
                                        ("wr3", "zhangsan", "online"),
                                        ("wr4", "zhangsan", "reseller")):
            session.add(CustomerGroup(chat_id=chat_id, owner=owner, segment=segment,
                                      name=f"群{chat_id}", member_count=3, status="live",
                                      created_at=now, updated_at=now))
    reply = await handle_text(bot, "/announce online 本周六 10 点直播上新，记得来看！")
    assert reply["Content"] == "已为 3 个群创建群发任务，需 2 位群主在企业微信中确认后发出。"
    tasks = {a.body["sender"]: a.body for a in await bot.outbox(kind="announcement")}
    assert tasks["zhangsan"]["chat_id_list"] == ["wr1", "wr3"]
    assert tasks["lisi"]["chat_id_list"] == ["wr2"]
    assert tasks["lisi"]["text"]["content"] == "本周六 10 点直播上新，记得来看！"
    assert tasks["lisi"]["chat_type"] == "group"
    nothing = await handle_text(bot, "/announce nowhere 你好")
    assert nothing["Content"] == "找不到分群或群「nowhere」，或其中没有可用的群。"
    assert (await handle_text(bot, "/announce online"))["Content"].startswith("用法：")
    too_long = await handle_text(bot, "/announce online " + "长" * 1400)
    assert too_long["Content"].startswith("用法：")


async def _announcements(bot: Bot) -> list[dict]:  # type: ignore[type-arg]
    return [a.body | {"key": a.key} for a in await bot.outbox(kind="announcement")]


async def _south_groups(bot: Bot) -> None:
    async with bot.session() as session:
        for chat_id, owner, segment in (("wrS1", "zhangsan", "shop_south"),
                                        ("wrS2", "zhangsan", "shop_south"),
                                        ("wrS3", "lisi", "shop_south"),
                                        ("wrO1", "lisi", "online")):
            session.add(CustomerGroup(chat_id=chat_id, owner=owner, segment=segment,
                                      name=f"群{chat_id}", member_count=3, status="live",
                                      created_at=DAY, updated_at=DAY))


async def _queue(bot: Bot, column: str) -> None:
    async with bot.session() as session:
        for n in range(5):
            await content.add(session, column, f"条目{n}", "", None, DAY)


async def test_announce_holds_what_would_be_a_second_mass_message_today(
        bot: Bot) -> None:
    """shop_south's calendar has its 10:30 task planned (at 09:00) or queued (at 11:00): an
    announcement to those groups creates nothing WeCom would refuse and offers the choices."""
    await _south_groups(bot)
    async with bot.session() as session:
        for n in range(5):  # for the robots' posts too
            await content.add(session, "new_arrivals", f"新品{n}", "", None, DAY)
    bot.clock.now = DAY + timedelta(hours=9)
    reply = (await handle_text(bot, "/announce shop_south 周六直播，记得来！"))["Content"]
    assert reply.startswith("企业微信规定每个客户群每天只能收到一条群发。目标 3 个群中有 3 个")
    assert "群wrS1、群wrS2、群wrS3" in reply
    assert "/announce tomorrow 1  并入这些群明天的群发" in reply
    assert "/announce remind 1  改为提醒群主今天在群里手动发送" in reply
    assert await _announcements(bot) == []
    # 11:00: the 10:30 task was queued (its groups' message of today is used).
    await post_due(bot.db, bot.flows.calendar, DAY + timedelta(hours=10, minutes=35), 1)
    bot.clock.now = DAY + timedelta(hours=11)
    one = (await handle_text(bot, "/announce 群wrS3 新品到货"))["Content"]
    assert "目标 1 个群中有 1 个" in one and "/announce tomorrow 2" in one
    # The online group's 10:00 slot was missed (never queued): its message is free, once.
    assert (await handle_text(bot, "/announce wrO1 新品到货"))["Content"].startswith(
        "已为 1 个群创建群发任务")
    again = (await handle_text(bot, "/announce online 再来一条"))["Content"]
    assert "目标 1 个群中有 1 个今天的群发已使用" in again and "群wrO1" in again
    assert [a["chat_id_list"] for a in await _announcements(bot)] == [["wrO1"]]


async def test_a_planned_task_whose_column_is_empty_does_not_hold_an_announcement(
        bot: Bot) -> None:
    """The online groups' only post of the day is a slot of an empty column: skipped when due,
    it uses no message, so the announcement goes out now."""
    await _south_groups(bot)
    bot.clock.now = DAY + timedelta(hours=9)
    reply = (await handle_text(bot, "/announce online 新品到货"))["Content"]
    assert reply.startswith("已为 1 个群创建群发任务")
    assert [a["chat_id_list"] for a in await _announcements(bot)] == [["wrO1"]]


async def test_a_held_announcement_goes_into_tomorrows_mass_message(
        bot: Bot) -> None:
    # The calendar alone (DAY is two days from today: a talk's post may fall on any day).
    bot.flows = replace(bot.flows, talks=TalkFlows())
    await _south_groups(bot)
    await _queue(bot, "new_arrivals")  # today's 10:30 task will go out
    bot.clock.now = DAY + timedelta(hours=9)
    await handle_text(bot, "/announce shop_south 周六直播，记得来！")
    reply = (await handle_text(bot, "/announce tomorrow 1"))["Content"]
    assert reply == (f"公告 #1 已安排：并入 3 个群 {DAY + timedelta(days=1):%m-%d} 10:30 的"
                     "群发任务，需 2 位群主确认后发出。")
    assert (await handle_text(bot, "/announce remind 1"))["Content"] == \
        "没有待选择的公告 #1（编号不对，或已处理）。"
    next_day = DAY + timedelta(days=1)
    async with bot.db.reader() as session:  # the plan shows it
        planned = await preview(session, bot.flows.calendar, next_day.date(), 1,
                                "shop_south", bot.flows.onboarding)
    assert any("10:30 mass task → zhangsan (wrS1, announcement): 周六直播" in line
               for line in planned)
    for hhmm in (8, 10.6, 16.1):  # the calendar's runs on Wednesday
        await post_due(bot.db, bot.flows.calendar,
                       next_day + timedelta(hours=hhmm), 1000002, bot.flows.onboarding)
    tasks = [o.body for o in await bot.outbox() if "chat_id_list" in o.body]
    # Each group in one mass task that day, carrying the announcement.
    assert sorted(c for t in tasks for c in t["chat_id_list"]) == ["wrS1", "wrS2", "wrS3"]
    assert all(t["text"]["content"].startswith("周六直播") for t in tasks)


async def test_a_talks_mass_task_planned_today_holds_an_announcement(
        bot: Bot) -> None:
    talks = bot.flows.talks
    # No calendar for the south: only tomorrow's 嘉宾分享会, announced tonight, takes today's.
    guest = talks.talks["guest_shops"].model_copy(update={
        "weekday": (DAY + timedelta(days=1)).isoweekday(), "announce_time": "22:00"})
    bot.flows = replace(
        bot.flows, talks=TalkFlows(talks={"guest_shops": guest}),
        calendar=bot.flows.calendar.model_copy(update={"segments": {}}))
    await _south_groups(bot)
    await _queue(bot, "guest_talk")  # its topic: the announcement will go out
    bot.clock.now = DAY + timedelta(hours=9)
    reply = (await handle_text(bot, "/announce shop_south 周六直播，记得来！"))["Content"]
    assert reply.startswith("企业微信规定每个客户群每天只能收到一条群发。目标 3 个群中有 3 个")
    assert await _announcements(bot) == []  # nothing sent


async def test_a_held_announcement_can_go_to_the_owners_instead(bot: Bot) -> None:
    await _south_groups(bot)
    bot.clock.now = DAY + timedelta(hours=9)
    await handle_text(bot, "/announce shop_south 周六直播，记得来！")
    reply = (await handle_text(bot, "/announce remind #1"))["Content"]
    assert reply == "已提醒 2 位群主在 3 个群中手动发送公告。"
    reminders = {a["touser"]: a["text"]["content"] for a in await _announcements(bot)}
    assert reminders == {
        "lisi": "请在「群wrS3」中发送以下内容：\n\n周六直播，记得来！",
        "zhangsan": "请在「群wrS1、群wrS2」中发送以下内容：\n\n周六直播，记得来！"}
    assert (await handle_text(bot, "/announce remind x"))["Content"].startswith("用法：")


async def test_calendar_shows_what_is_posted_today(bot: Bot) -> None:
    reply = await handle_text(bot, "/calendar today")
    assert reply["handler"] == "handlers.commands.answer_calendar"
    assert reply["Content"].startswith("calendar ")
    assert "  shop_north: 0 customer group(s), 0 owner(s)" in reply["Content"]
    week = await handle_text(bot, "/calendar week")  # too long for the passive reply
    assert week["Content"] == bot.flows.commands.sent_separately
    assert (await handle_text(bot, "/calendar month"))["Content"].startswith("用法：")
