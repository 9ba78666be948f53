"""The recommender programme's handlers (handlers/koc.py, handlers/welcome.py): asking in kf
to become a 推荐官, the code WeCom makes and where it goes, and a friend add through a code."""

from __future__ import annotations

import json
from typing import Any

from app.engine.bot.env import Env
from app.engine.outbox.models import DEAD, OutboxMessage
from app.engine.outbox.outcomes import Outcome
from app.engine.outbox.store import Claimed
from app.koc import recommenders
from app.koc.links import koc_links
from app.koc.models import CODE_READY, CODE_REMOVED, NO_CODE, PENDING, Recommender, Referral
from app.members import service as members
from app.members.models import JOINED, LINKED, Member
from handlers.koc import _code_settled, remove_idle_codes
from tests.handlers.harness import Bot, friend_added, kf_text

ASKER = "wmAsker"


async def verified(bot: Bot, userid: str = ASKER, **fields: Any) -> Member:
    values = dict(external_userid=userid, staff_userid="zhangsan", channel="organic",
                  phone="13912345678", platform_user_id="u1", identity_type="physical_shop",
                  status=JOINED, link_state=LINKED, segment="shop_north", region="华东")
    async with bot.session() as session:
        return await members.create(session, bot.clock(), "test", **(values | fields))


async def settle_code(bot: Bot, row: OutboxMessage, outcome: Outcome) -> None:
    """What the outbox's sender does once WeCom answered the code's row: run its hook."""
    hook = _code_settled(Env(bot.settings, bot.flows, bot.db, clock=bot.clock))
    claimed = Claimed(row.id, row.idempotency_key, row.kind, row.api, row.request, row.priority,
                      row.deadline, row.rate_key, 1, None, row.created_at, bot.clock(), "lease")
    async with bot.session() as session:
        await hook(session, claimed, outcome, bot.clock())


def made(config_id: str = "cfg1", qr: str = "https://qr.example/1") -> Outcome:
    return Outcome("sent", {"response": json.dumps({"errcode": 0, "config_id": config_id,
                                                    "qr_code": qr})})


async def code_row(bot: Bot) -> OutboxMessage:
    rows = [r for r in await bot.rows(OutboxMessage) if r.kind == recommenders.CODE_KIND]
    assert len(rows) == 1
    return rows[0]


async def test_a_stranger_asking_is_told_what_it_takes(bot: Bot) -> None:
    handled = await bot.feed(kf_text("推荐官", "wmNobody"))
    assert handled.handler == "handlers.koc.enrol_on_request"
    reply, = await bot.outbox(kind="kf_reply")
    assert reply.body["text"]["content"] == bot.flows.koc.texts.not_eligible  # type: ignore[union-attr]
    assert await bot.rows(Recommender) == []


async def test_a_consumer_or_an_unverified_member_cannot_become_one(bot: Bot) -> None:
    await verified(bot, "wmConsumer", identity_type="consumer", status="rejected",
                   link_state=None, phone="13900000001", platform_user_id="u2")
    await verified(bot, "wmWaiting", status="submitted", link_state=None,
                   phone="13900000002", platform_user_id="u3")
    for who in ("wmConsumer", "wmWaiting"):
        await bot.feed(kf_text("我要当推荐官", who))
    assert await bot.rows(Recommender) == []
    assert len(await bot.outbox(kind=recommenders.CODE_KIND)) == 0


async def test_a_verified_member_gets_a_code_made_and_sent_in_kf(bot: Bot) -> None:
    member = await verified(bot)
    await bot.feed(kf_text("推荐官", ASKER))
    rec, = await bot.rows(Recommender)
    assert (rec.member_id, rec.source, rec.code) == (member.id, "asked", "requested")
    code, = await bot.outbox(kind=recommenders.CODE_KIND)
    assert code.api == "externalcontact/add_contact_way"
    assert code.body["state"] == f"ref.{rec.short_id}" and len(code.body["state"]) <= 30
    assert code.body["user"] == ["zhangsan"] and code.body["scene"] == 2
    coming, = await bot.outbox(kind="kf_reply")
    assert coming.body["text"]["content"] == bot.flows.koc.texts.code_coming  # type: ignore[union-attr]

    await settle_code(bot, await code_row(bot), made())
    rec, = await bot.rows(Recommender)
    assert (rec.code, rec.config_id, rec.qr_code) == (CODE_READY, "cfg1", "https://qr.example/1")
    sent, = await bot.outbox(kind=recommenders.DELIVERY_KIND)
    assert sent.api == "kf/send_msg" and sent.body["touser"] == ASKER
    links = koc_links(bot.settings)
    assert links.share_url(rec.short_id) in sent.body["text"]["content"]
    assert links.member_of(sent.body["text"]["content"].split("/koc/me/")[1].split()[0]) \
        == ASKER


async def test_asking_again_sends_the_code_at_once(bot: Bot) -> None:
    await verified(bot)
    await bot.feed(kf_text("推荐官", ASKER))
    await settle_code(bot, await code_row(bot), made())
    bot.clock.advance(minutes=5)
    await bot.feed(kf_text("推荐官", ASKER, menu_id="koc_join"))
    assert len(await bot.outbox(kind=recommenders.CODE_KIND)) == 1  # no second code
    answers = await bot.outbox(kind="kf_reply")
    assert "/koc/r/" in answers[-1].body["text"]["content"]


async def test_a_code_whose_kf_window_closed_goes_to_the_staff_member(bot: Bot) -> None:
    await verified(bot)
    await bot.feed(kf_text("推荐官", ASKER))
    bot.clock.advance(hours=49)  # WeCom's 48 h are over
    await settle_code(bot, await code_row(bot), made())
    sent, = await bot.outbox(kind=recommenders.DELIVERY_KIND)
    assert sent.api == "message/send" and sent.body["touser"] == "zhangsan"
    assert "/koc/r/" in sent.body["text"]["content"]


async def test_a_code_wecom_refused_can_be_asked_for_again(bot: Bot) -> None:
    await verified(bot)
    await bot.feed(kf_text("推荐官", ASKER))
    await settle_code(bot, await code_row(bot), Outcome(DEAD, {"errcode": 40001}))
    rec, = await bot.rows(Recommender)
    assert rec.code == NO_CODE
    assert await bot.outbox(kind=recommenders.DELIVERY_KIND) == []
    bot.clock.advance(minutes=1)
    await bot.feed(kf_text("推荐官", ASKER))
    assert len(await bot.outbox(kind=recommenders.CODE_KIND)) == 2


async def test_no_code_is_made_past_the_programme_s_limit(bot: Bot) -> None:
    await verified(bot)
    await verified(bot, "wmSecond", phone="13900000009", platform_user_id="u9")
    limited = bot.flows.koc.model_copy(  # type: ignore[union-attr]
        update={"codes": bot.flows.koc.codes.model_copy(update={"max": 1})})  # type: ignore[union-attr]
    bot.flows = type(bot.flows)(**(vars(bot.flows) | {"koc": limited}))
    await bot.feed(kf_text("推荐官", ASKER))
    await bot.feed(kf_text("推荐官", "wmSecond"))
    assert len(await bot.outbox(kind=recommenders.CODE_KIND)) == 1
    answer = (await bot.outbox(kind="kf_reply"))[-1]
    assert answer.body["text"]["content"] == limited.texts.full
    assert len(await bot.rows(Recommender)) == 1  # nobody is made one without a code


async def test_a_friend_add_through_a_code_is_a_referral(bot: Bot) -> None:
    await verified(bot)
    await bot.feed(kf_text("推荐官", ASKER))
    rec, = await bot.rows(Recommender)
    await bot.feed(friend_added("wmFriend", state=f"ref.{rec.short_id}", welcome_code="WC9"))
    friend = [m for m in await bot.rows(Member) if m.external_userid == "wmFriend"][0]
    assert (friend.channel, friend.state) == ("ref", f"ref.{rec.short_id}")
    referral, = await bot.rows(Referral)
    assert (referral.recommender_id, referral.referee_member_id, referral.status) == (
        rec.id, friend.id, PENDING)
    welcome, = await bot.outbox(kind="welcome")
    assert "推荐官" in welcome.body["text"]["content"]  # the referral channel's variant


async def test_unused_codes_are_deleted_after_the_idle_days(bot: Bot) -> None:
    await verified(bot)
    await bot.feed(kf_text("推荐官", ASKER))
    await settle_code(bot, await code_row(bot), made("cfgIdle"))
    bot.clock.advance(days=bot.flows.koc.codes.idle_days - 1)  # type: ignore[union-attr]
    env = Env(bot.settings, bot.flows, bot.db, clock=bot.clock)
    await remove_idle_codes(env)
    assert await bot.outbox(kind=recommenders.CODE_DELETE_KIND) == []
    bot.clock.advance(days=2)
    await remove_idle_codes(env)
    removal, = await bot.outbox(kind=recommenders.CODE_DELETE_KIND)
    assert removal.api == "externalcontact/del_contact_way"
    assert removal.body == {"config_id": "cfgIdle"}
    rec, = await bot.rows(Recommender)
    assert rec.code == CODE_REMOVED and rec.config_id is None


async def test_a_referral_keeps_a_code_in_use(bot: Bot) -> None:
    await verified(bot)
    await bot.feed(kf_text("推荐官", ASKER))
    await settle_code(bot, await code_row(bot), made("cfgBusy"))
    rec, = await bot.rows(Recommender)
    bot.clock.advance(days=50)
    await bot.feed(friend_added("wmLate", state=f"ref.{rec.short_id}", welcome_code="WC10"))
    bot.clock.advance(days=20)  # 70 days after the code, 20 after its last use
    await remove_idle_codes(Env(bot.settings, bot.flows, bot.db, clock=bot.clock))
    assert await bot.outbox(kind=recommenders.CODE_DELETE_KIND) == []
    rec, = await bot.rows(Recommender)
    assert (rec.code, rec.config_id) == (CODE_READY, "cfgBusy")


async def test_a_nomination_keeps_the_kf_account_they_asked_on(bot: Bot) -> None:
    member = await verified(bot)
    await bot.feed(kf_text("推荐官", ASKER))
    async with bot.session() as session:
        row = await session.get(Member, member.id)
        assert row is not None and bot.flows.koc is not None
        done = await recommenders.enrol(session, row, "nominated:op", bot.clock(),
                                        bot.flows.koc, bot.flows.funnel)
        assert done.outcome == recommenders.COMING  # its code is on its way already
    rec, = await bot.rows(Recommender)
    assert rec.deliver_kfid is not None
