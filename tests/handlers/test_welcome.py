"""handlers/welcome.py on the harness: a friend add is welcomed for its channel and slot, and
recorded as a member with its funnel steps."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app.engine.outbox.models import FAST
from app.funnel import steps
from app.funnel.models import FunnelEvent
from app.members.models import Member, MemberHistory
from app.verify.links import links_for
from tests.handlers.harness import Bot, friend_added

WELCOME = "handlers.welcome.welcome_new_friend"
LINK = re.compile(r"/verify/([\w.-]+)")  # a member's signed link in a text


def _steps(events: list[FunnelEvent]) -> list[tuple[str, str | None, int | None]]:
    return [(e.step, e.channel, e.member_id) for e in events]


@pytest.mark.parametrize("half", [False, True], ids=["add", "half_add"])
async def test_a_friend_add_is_welcomed_for_its_channel_and_recorded(bot: Bot,
                                                                     half: bool) -> None:
    handled = await bot.feed(friend_added("wmA", state="douyin", welcome_code="WC1", half=half))
    assert handled.handler == WELCOME and handled.reply is None
    [welcome] = await bot.outbox()
    assert (welcome.key, welcome.kind, welcome.api, welcome.priority) == (
        "welcome:WC1", "welcome", "externalcontact/send_welcome_msg", FAST)
    assert welcome.deadline == bot.clock.now + timedelta(seconds=18)  # the code lives 20 s
    url = links_for(bot.settings).url("wmA")
    assert welcome.body["welcome_code"] == "WC1"
    # A signed link carries the second it was made: compare the texts without the links, and
    # whose link it is.
    content = welcome.body["text"]["content"]
    expected = bot.flows.funnel.welcome_for("douyin", None).text.format(
        verify_url=url, channel="douyin", slot="")
    assert re.sub(r"https?://\S+", "<link>", content) == \
        re.sub(r"https?://\S+", "<link>", expected)
    assert content.startswith("您好，感谢从抖音关注我们！")
    [link] = re.findall(r"https?://\S+", content)
    assert links_for(bot.settings).member_of(link.rsplit("/", 1)[1]) == "wmA"
    [member] = await bot.rows(Member)
    assert (member.external_userid, member.staff_userid, member.channel, member.slot,
            member.state, member.welcome_code, member.status) == (
        "wmA", "zhangsan", "douyin", None, "douyin", "WC1", "added")
    assert _steps(await bot.rows(FunnelEvent)) == [(steps.FRIEND_ADDED, "douyin", member.id)]


async def test_a_slot_gets_its_own_variant_and_the_default_welfare(bot: Bot) -> None:
    await bot.feed(friend_added("wmS", state="app.order_success", welcome_code="WC2"))
    [welcome] = await bot.outbox()
    assert welcome.body["text"]["content"].startswith("您好，感谢您在 App 下单！")
    [card] = welcome.body["attachments"]
    assert card["msgtype"] == "link" and card["link"]["url"] == "https://example.com/welfare"
    [member] = await bot.rows(Member)
    assert (member.channel, member.slot) == ("app", "order_success")


@pytest.mark.parametrize("state", ["nowhere.at_all", ""], ids=["unknown", "empty"])
async def test_an_unknown_state_counts_under_the_default_channel(bot: Bot, state: str) -> None:
    await bot.feed(friend_added("wmU", state=state, welcome_code="WC3"))
    [welcome] = await bot.outbox()
    assert welcome.body["text"]["content"].startswith("您好，欢迎加入我们的商家社群！")
    [member] = await bot.rows(Member)
    assert (member.channel, member.slot, member.state) == ("organic", None, state)
    events = await bot.rows(FunnelEvent)
    assert _steps(events) == [(steps.FRIEND_ADDED, "organic", member.id),
                              (steps.DEFAULT_CHANNEL_USED, "organic", member.id)]
    assert events[1].detail == state


async def test_a_known_state_is_not_counted_as_the_default_channel(bot: Bot) -> None:
    await bot.feed(friend_added("wmO", state="organic", welcome_code="WC4"))
    assert [e.step for e in await bot.rows(FunnelEvent)] == [steps.FRIEND_ADDED]


async def test_an_add_without_a_welcome_code_is_counted_as_skipped(bot: Bot) -> None:
    handled = await bot.feed(friend_added("wmN", state="douyin"), inbox_id=7)
    assert handled.handler == WELCOME
    assert await bot.outbox() == []
    [member] = await bot.rows(Member)
    assert member.welcome_code is None
    events = await bot.rows(FunnelEvent)
    assert [(e.step, e.event_key) for e in events] == [
        (steps.WELCOME_SKIPPED, "welcome_skipped:7"),
        (steps.FRIEND_ADDED, f"friend_added:{member.id}")]
    assert "welcome_skipped" in bot.log.events()


async def test_the_handler_queues_the_welcome_the_callback_did_not_store(bot: Bot) -> None:
    """Stored with the callback or not, the friend add leaves the same single welcome."""
    await bot.feed(friend_added("wmI", state="douyin", welcome_code="WCi"))
    [with_intake] = await bot.outbox()
    await bot.feed(friend_added("wmH", state="douyin", welcome_code="WCh"), with_intake=False)
    [_, by_handler] = await bot.outbox()
    assert (by_handler.key, by_handler.kind, by_handler.priority, by_handler.deadline) == (
        "welcome:WCh", "welcome", FAST, bot.clock.now + timedelta(seconds=18))
    assert by_handler.body["welcome_code"] == "WCh"
    # The same text but for the member's own link (a signed link carries its second: compare
    # whose it is, not the signature).
    links = links_for(bot.settings)
    intake_text, handler_text = (row.body["text"]["content"] for row in (with_intake, by_handler))
    assert [links.member_of(token) for token in LINK.findall(handler_text)] == ["wmH"]
    assert LINK.sub("LINK", handler_text) == LINK.sub("LINK", intake_text)


async def test_deadlines_count_from_when_the_callback_was_received(bot: Bot) -> None:
    received = bot.clock.now
    bot.clock.advance(seconds=5)  # the worker's backlog
    await bot.feed(friend_added("wmL", state="douyin", welcome_code="WCl"), with_intake=False,
                   received_at=received)
    [welcome] = await bot.outbox()
    assert welcome.deadline == received + timedelta(seconds=18)
    [member] = await bot.rows(Member)
    [added] = await bot.rows(FunnelEvent)
    assert member.added_at == received and added.at == received


async def test_a_retried_handler_records_nothing_twice(bot: Bot) -> None:
    event = friend_added("wmR", state="douyin", welcome_code="WCr")
    await bot.feed(event, inbox_id=3)
    await bot.feed(event, inbox_id=3, with_intake=False)
    assert len(await bot.outbox()) == 1
    assert len(await bot.rows(Member)) == 1
    assert [e.step for e in await bot.rows(FunnelEvent)] == [steps.FRIEND_ADDED]


async def test_a_second_add_records_the_new_staff_member_not_a_new_member(bot: Bot) -> None:
    await bot.feed(friend_added("wmT", state="douyin", welcome_code="WCt1"))
    bot.clock.advance(days=1)
    await bot.feed(friend_added("wmT", state="app.home_banner", welcome_code="WCt2",
                                staff="lisi"))
    [member] = await bot.rows(Member)
    # First touch keeps the channel; the new staff member and code are history.
    assert (member.channel, member.staff_userid, member.welcome_code) == (
        "douyin", "lisi", "WCt2")
    changes = [(h.field, h.old, h.new) for h in await bot.rows(MemberHistory)
               if h.at == bot.clock.now]
    assert sorted(changes) == [("staff_userid", "zhangsan", "lisi"),
                               ("welcome_code", "WCt1", "WCt2")]
    assert [o.key for o in await bot.outbox()] == ["welcome:WCt1", "welcome:WCt2"]
    assert [e.step for e in await bot.rows(FunnelEvent)] == [steps.FRIEND_ADDED]


async def test_a_welcome_settled_before_the_member_existed_gets_its_member(bot: Bot) -> None:
    """The sender may count the welcome sent before the worker ran: the handler attaches it."""
    async with bot.session() as session:
        session.add(FunnelEvent(step=steps.WELCOME_SENT, at=bot.clock.now,
                                event_key=f"{steps.WELCOME_SENT}:WCs", latency_ms=300))
    await bot.feed(friend_added("wmW", state="app.order_success", welcome_code="WCs"))
    [member] = await bot.rows(Member)
    sent = [e for e in await bot.rows(FunnelEvent) if e.step == steps.WELCOME_SENT]
    assert [(e.member_id, e.channel, e.slot) for e in sent] == [
        (member.id, "app", "order_success")]
