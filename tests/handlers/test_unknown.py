"""handlers/unknown.py, and events no behaviour takes: handled by nothing, nothing written."""

from __future__ import annotations

import pytest

from app.engine.wecom.events import EnterAgent, Event, ExternalContactEdited
from app.funnel.models import FunnelEvent
from app.members.models import Member
from tests.handlers.harness import CORP_ID, Bot, kf_text, member_text, unknown_event


async def test_an_unknown_event_is_logged_with_its_reason(bot: Bot) -> None:
    handled = await bot.feed(unknown_event("unknown Event 'brand_new'"))
    assert handled.handler == "handlers.unknown.log_unknown_event" and handled.reply is None
    [(level, line, fields)] = bot.log.lines
    assert (level, line, fields) == ("warning", "unknown_event",
                                     {"reason": "unknown Event 'brand_new'", "msg_type": "event"})
    assert await bot.outbox() == []


def _servicer_message() -> Event:
    from app.engine.wecom.api_kf import KfMessage
    from app.engine.wecom.parsing import kf_event

    return kf_event(KfMessage(msgid="srv1", msgtype="text", open_kfid="wk1",
                              external_userid="wmA", origin=5, text={"content": "好的"}))


@pytest.mark.parametrize("event", [
    EnterAgent(to_user_name=CORP_ID, from_user_name="op_alice", create_time=1, msg_type="event",
               event="enter_agent", agent_id=1000002),
    ExternalContactEdited(to_user_name=CORP_ID, create_time=1, msg_type="event",
                          event="change_external_contact", change_type="edit_external_contact",
                          user_id="zhangsan", external_user_id="wmE"),
    member_text("你好"),  # not a command
    _servicer_message(),  # a servicer's own message in 微信客服
], ids=["enter_agent", "contact_edited", "plain_text", "kf_servicer"])
async def test_events_no_behaviour_takes_change_nothing(bot: Bot, event: Event) -> None:
    handled = await bot.feed(event)
    assert (handled.handler, handled.reply) == (None, None)
    assert await bot.outbox() == []
    assert await bot.rows(Member) == [] and await bot.rows(FunnelEvent) == []


async def test_a_customer_text_outside_any_dialog_goes_to_the_keywords(bot: Bot) -> None:
    """The dialog and the commands pass it on: it reaches the keyword replies, last."""
    assert (await bot.feed(kf_text("你好", "wmZ"))).handler == \
        "handlers.keywords.answer_by_keyword"
