"""handlers/kf.py on the harness: news of a kf account is noted for the reader, a customer
entering a conversation is welcomed through the event's code, and a message WeCom could not
deliver is recorded."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from app.engine.outbox.models import FAST
from app.kf.models import KfAccount, KfSendFailure
from tests.handlers.harness import (
    OPEN_KFID,
    Bot,
    kf_enter_session,
    kf_news,
    kf_send_failed,
)

K = "handlers.kf."


async def test_news_is_noted_with_the_latest_token(bot: Bot) -> None:
    handled = await bot.feed(kf_news("token-1"))
    assert handled.handler == K + "note_kf_news"
    bot.clock.advance(minutes=1)
    await bot.feed(kf_news("token-2"))
    [account] = await bot.rows(KfAccount)
    assert (account.open_kfid, account.token, account.token_at, account.news, account.pulled) \
        == (OPEN_KFID, "token-2", bot.clock.now, 2, 0)
    assert await bot.outbox() == []  # the reader calls kf/sync_msg itself


async def test_an_entering_customer_is_welcomed_once_through_the_code(bot: Bot) -> None:
    handled = await bot.feed(kf_enter_session("wmK", welcome_code="CODE1"))
    assert handled.handler == K + "welcome_kf_customer"
    msgid = hashlib.sha256(b"CODE1").hexdigest()[:32]
    [welcome] = await bot.outbox()
    assert (welcome.key, welcome.kind, welcome.api, welcome.priority, welcome.deadline) == (
        f"kfwelcome:{msgid}", "kf_welcome", "kf/send_msg_on_event", FAST,
        bot.clock.now + timedelta(seconds=18))
    assert welcome.body == {"code": "CODE1", "msgid": msgid, "msgtype": "text",
                            "text": {"content": bot.flows.kf.welcome.default}}


async def test_the_handler_queues_the_welcome_the_reader_did_not(bot: Bot) -> None:
    await bot.feed(kf_enter_session("wmK", welcome_code="CODE2", scene="app"),
                   with_intake=False)
    [welcome] = await bot.outbox()
    assert welcome.kind == "kf_welcome" and welcome.priority == FAST
    assert welcome.body["text"]["content"].startswith("您好，欢迎从 App 来到商家服务中心！")


async def test_no_welcome_code_means_no_welcome(bot: Bot) -> None:
    handled = await bot.feed(kf_enter_session("wmK", welcome_code=None))
    assert handled.handler == K + "welcome_kf_customer"
    assert await bot.outbox() == []


async def test_a_message_not_delivered_is_recorded_once(bot: Bot) -> None:
    event = kf_send_failed("wmK", "our-msg-1", fail_type=10)
    handled = await bot.feed(event)
    assert handled.handler == K + "record_send_failure"
    await bot.feed(event)  # the same message pulled again
    [failure] = await bot.rows(KfSendFailure)
    assert (failure.open_kfid, failure.external_userid, failure.fail_msgid, failure.fail_type,
            failure.msgid, failure.at) == (OPEN_KFID, "wmK", "our-msg-1", 10,
                                           event.message.msgid, bot.clock.now)
    assert await bot.outbox() == []
