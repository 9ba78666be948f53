"""handlers/keywords.py on the harness: a customer's question in 微信客服 gets the answer of
the rule it matches (per segment), a miss is kept and answered, asking for a person or missing
too often hands the conversation over, and a session a person ended comes back."""

from __future__ import annotations

from datetime import timedelta

from app.kf.models import KeywordHit, KfConversation, UnansweredQuestion
from app.kf.replies import msgid_for
from app.members import service as members
from tests.handlers.harness import OPEN_KFID, Bot, kf_session_changed, kf_text

ANSWER = "handlers.keywords.answer_by_keyword"
UNANSWERED = "抱歉，我暂时没有理解您的问题。您可以换个说法，或回复“人工”转人工客服。"


async def _segment(bot: Bot, external_userid: str, segment: str) -> None:
    async with bot.session() as session:
        await members.create(session, bot.clock.now, "test", external_userid=external_userid,
                             staff_userid="zhangsan", channel="organic", segment=segment)


async def _conversation(bot: Bot) -> KfConversation:
    [row] = await bot.rows(KfConversation)
    return row


async def test_a_question_gets_its_rules_answer(bot: Bot) -> None:
    event = kf_text("多久发货？", "wmQ")
    handled = await bot.feed(event)
    assert handled.handler == ANSWER and handled.reply is None
    key = f"kfreply:{event.message.msgid}"
    [answer] = await bot.outbox()
    assert (answer.key, answer.kind, answer.api) == (key, "kf_reply", "kf/send_msg")
    text = "订单一般在付款后 48 小时内发货，发货后可在 App「我的订单」中查看物流。"
    assert answer.body == {"touser": "wmQ", "open_kfid": OPEN_KFID, "msgid": msgid_for(key),
                           "msgtype": "text", "text": {"content": text}}
    [hit] = await bot.rows(KeywordHit)
    assert (hit.rule_id, hit.segment, hit.external_userid) == ("shipping", None, "wmQ")
    row = await _conversation(bot)
    assert (row.answers, row.misses) == (1, 0)


async def test_the_members_segment_picks_the_answer(bot: Bot) -> None:
    await _segment(bot, "wmN", "shop_north")
    await bot.feed(kf_text("物流", "wmN"))
    [answer] = await bot.outbox()
    assert answer.body["text"]["content"].startswith("北方仓订单")
    [hit] = await bot.rows(KeywordHit)
    assert (hit.rule_id, hit.segment) == ("shipping", "shop_north")


async def test_a_menu_answer_and_a_click_on_it(bot: Bot) -> None:
    await bot.feed(kf_text("进货价多少", "wmM"))
    [menu] = await bot.outbox()
    assert menu.body["msgtype"] == "msgmenu"
    assert menu.body["msgmenu"]["head_content"] == "您想了解哪类商品的进货价？"
    assert [i["click"]["id"] for i in menu.body["msgmenu"]["list"]] == [
        "price_food", "price_daily", "price_beauty"]
    await bot.feed(kf_text("食品饮料", "wmM", menu_id="price_food"))
    clicked = (await bot.outbox())[1]
    assert clicked.body["text"]["content"].startswith("食品饮料类进货价")
    assert [h.rule_id for h in await bot.rows(KeywordHit)] == ["price", "price_food"]


async def test_misses_are_kept_and_the_second_in_a_row_hands_over(bot: Bot) -> None:
    first = kf_text("你们老板是谁", "wmX")
    await bot.feed(first)
    [sorry] = await bot.outbox()
    assert (sorry.key, sorry.body["text"]["content"]) == (
        f"kfreply:{first.message.msgid}", UNANSWERED)
    assert (await _conversation(bot)).misses == 1
    second = kf_text("公司在哪", "wmX")
    await bot.feed(second)
    handoff = (await bot.outbox())[1]
    assert (handoff.key, handoff.kind, handoff.api, handoff.body) == (
        f"kftrans:{second.message.msgid}", "kf_handoff", "kf/service_state/trans",
        {"open_kfid": OPEN_KFID, "external_userid": "wmX", "service_state": 2})
    assert (await _conversation(bot)).misses == 0
    assert [(q.text, q.external_userid) for q in await bot.rows(UnansweredQuestion)] == [
        ("你们老板是谁", "wmX"), ("公司在哪", "wmX")]


async def test_a_match_resets_the_misses(bot: Bot) -> None:
    await bot.feed(kf_text("你好呀", "wmR"))
    await bot.feed(kf_text("退款怎么弄", "wmR"))
    await bot.feed(kf_text("你好呀", "wmR"))
    assert [o.kind for o in await bot.outbox()] == ["kf_reply"] * 3  # no hand-off


async def test_asking_for_a_person_hands_over_at_once(bot: Bot) -> None:
    await bot.feed(kf_text("人工", "wmP"))
    [handoff] = await bot.outbox()
    assert handoff.kind == "kf_handoff"
    assert await bot.rows(UnansweredQuestion) == []


async def test_nothing_is_answered_while_a_person_has_the_conversation(bot: Bot) -> None:
    await bot.feed(kf_text("你好", "wmH"))
    async with bot.session() as session:
        row = await session.get(KfConversation, (await _conversation(bot)).id)
        assert row is not None
        row.handed_off_at = bot.clock.now
    bot.clock.advance(hours=1)
    await bot.feed(kf_text("发货", "wmH"))
    assert len(await bot.outbox()) == 1 and await bot.rows(KeywordHit) == []
    # A session the person ended gives the conversation back.
    handled = await bot.feed(kf_session_changed("wmH", change_type=3))
    assert handled.handler == "handlers.keywords.resume_after_session"
    assert (await _conversation(bot)).handed_off_at is None
    await bot.feed(kf_text("发货", "wmH"))
    assert [h.rule_id for h in await bot.rows(KeywordHit)] == ["shipping"]


async def test_only_an_ended_session_gives_the_conversation_back(bot: Bot) -> None:
    await bot.feed(kf_text("你好", "wmS"))
    taken = bot.clock.now
    async with bot.session() as session:
        row = await session.get(KfConversation, (await _conversation(bot)).id)
        assert row is not None
        row.handed_off_at = taken
    await bot.feed(kf_session_changed("wmS", change_type=1))  # a person took it
    assert (await _conversation(bot)).handed_off_at == taken


async def test_a_window_that_closed_gets_no_answer(bot: Bot) -> None:
    await bot.feed(kf_text("发货", "wmW", sent=bot.clock.now - timedelta(hours=49)))
    assert await bot.outbox() == []
    assert [h.rule_id for h in await bot.rows(KeywordHit)] == ["shipping"]  # still counted
