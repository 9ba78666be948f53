"""The /koc operator command (handlers/commands.py) on the harness: the programme's numbers,
the flagged referrals and their decision, the reward ledger's approve and decline, usage
errors, and a clear answer when sop_flows/koc.yaml is absent."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from app.koc.models import Recommender, ReferralCredit, Reward
from app.koc.models import Referral as ReferralRow
from app.members.models import Member
from tests.conftest import OPERATOR
from tests.handlers.harness import Bot, member_text
from tests.koc.people import change, recommender
from tests.koc.referred import SETTLED, earned, flag, nickname, referred, settle

BY = f"wecom:{OPERATOR}"


async def koc(bot: Bot, args: str = "") -> str:
    handled = await bot.feed(member_text(f"/koc {args}".strip(), OPERATOR))
    assert handled.handler == "handlers.commands.answer_koc"
    assert handled.text is not None
    return handled.text


async def test_without_koc_yaml_the_command_says_the_programme_is_not_configured(
        bot: Bot) -> None:
    bot.flows = replace(bot.flows, koc=None)
    for args in ("", "flagged", "approve 1"):
        assert await koc(bot, args) == ("推荐官计划尚未开启：请添加 sop_flows/koc.yaml"
                                        "（见 docs/koc.md）。")


async def test_help_names_the_koc_command(bot: Bot) -> None:
    handled = await bot.feed(member_text("/help", OPERATOR))
    assert "/koc flagged" in (handled.text or "") and "/koc decline 编号 原因" in (
        handled.text or "")


async def test_stats_count_the_month_and_what_waits_and_rank_the_top_recommenders(
        bot: Bot) -> None:
    bot.clock.now = SETTLED
    alice, bob, idle = (await recommender(bot.db), await recommender(bot.db),
                        await recommender(bot.db))
    await nickname(bot.db, await _owner(bot, alice), "小王")
    for _ in range(2):
        await referred(bot.db, alice)
    await referred(bot.db, bob)
    await referred(bot.db, bob, status="routed")  # not in a group yet: stays pending
    await referred(bot.db, bob, identity="consumer")
    assert await settle(bot.db) == {"credited": 3, "rejected": 1}
    await flag(bot.db, idle)
    await earned(bot.db, alice)
    text = await koc(bot)
    assert text.splitlines() == [
        "推荐官计划（2026-11，北京时间）",
        "推荐官：3 位",
        "本月推荐：6 人（待定 1，已计入 3，不计入 1，待人工判断 1，非首次推荐 0）",
        "本月计入：3 人",
        "待处理：可疑推荐 1 条（/koc flagged），待批准奖励 1 个",
        "本月推荐榜：",
        f"1. #{alice.member_id} 小王  2 人",
        f"2. #{bob.member_id}  1 人"]


async def test_stats_of_a_new_month_start_from_zero(bot: Bot) -> None:
    bot.clock.now = SETTLED + timedelta(days=20)  # December in Shanghai
    rec = await recommender(bot.db)
    await referred(bot.db, rec)
    await settle(bot.db)
    await flag(bot.db, rec)  # waits whatever the month
    text = await koc(bot)
    assert "推荐官计划（2026-12，北京时间）" in text
    assert "本月推荐：0 人" in text and "本月计入：0 人" in text
    assert "可疑推荐 1 条" in text and text.endswith("本月暂无计入的推荐。")


async def test_flagged_referrals_are_listed_and_decided(bot: Bot) -> None:
    bot.clock.now = SETTLED
    rec = await recommender(bot.db)
    await nickname(bot.db, await _owner(bot, rec), "老李")
    friend, credit_id = await flag(bot.db, rec, "burst")
    other, reject_id = await flag(bot.db, rec, "phone_range")
    listed, by = await koc(bot, "flagged"), f"#{rec.member_id} 老李"
    assert listed.splitlines() == [
        "待人工判断的推荐 2 条：",
        f"#{credit_id} 推荐官 {by} → 会员 #{friend.id}（短时间内推荐过多，11-18 10:00）",
        f"#{reject_id} 推荐官 {by} → 会员 #{other.id}（同一号段过多，11-18 10:00）",
        "/koc credit 编号  计入；/koc reject 编号  不计入"]
    assert await koc(bot, f"credit {credit_id}") == f"推荐 #{credit_id} 已处理：已计入。"
    assert await koc(bot, f"reject #{reject_id}") == (
        f"推荐 #{reject_id} 已处理：不计入（运营判定不计入）。")
    assert await koc(bot, f"credit {reject_id}") == (
        f"推荐 #{reject_id} 不在待人工判断的列表中（编号不对，或已处理）。")
    rows = {r.id: r for r in await bot.rows(ReferralRow)}
    assert (rows[credit_id].status, rows[credit_id].decided_by) == ("credited", BY)
    assert (rows[reject_id].status, rows[reject_id].reason) == ("rejected", "operator")
    [credit] = await bot.rows(ReferralCredit)
    assert credit.referee_member_id == friend.id
    assert await koc(bot, "flagged") == "目前没有待人工判断的推荐。"


async def test_crediting_a_flagged_referral_still_applies_the_other_rules(bot: Bot) -> None:
    bot.clock.now = SETTLED
    rec = await recommender(bot.db)
    friend, referral_id = await flag(bot.db, rec)
    await change(bot.db, friend, identity_type="consumer")  # a reviewer's second look
    assert await koc(bot, f"credit {referral_id}") == (
        f"推荐 #{referral_id} 已处理：不计入（消费者）。")
    assert await bot.rows(ReferralCredit) == []


async def test_rewards_are_approved_and_declined_once(bot: Bot) -> None:
    rec = await recommender(bot.db)
    first, second = await earned(bot.db, rec), await earned(bot.db, rec, "silver", "200 元进货券")
    assert await koc(bot, f"approve {first}") == f"奖励 #{first}（50 元进货券）已批准。"
    assert await koc(bot, f"approve {first}") == (
        f"奖励 #{first} 无法这样处理（编号不对，或已处理）。")
    assert await koc(bot, f"decline {second} 推荐的是同一家店") == (
        f"奖励 #{second}（200 元进货券）已拒绝。")
    assert await koc(bot, "approve 99") == "奖励 #99 无法这样处理（编号不对，或已处理）。"
    rows = {r.id: r for r in await bot.rows(Reward)}
    assert (rows[first].status, rows[first].decided_by) == ("approved", BY)
    assert (rows[second].status, rows[second].note) == ("declined", "推荐的是同一家店")


async def test_bad_arguments_get_the_usage(bot: Bot) -> None:
    rec = await recommender(bot.db)
    reward = await earned(bot.db, rec)
    for args in ("bogus", "approve", "approve x", f"decline {reward}", "credit ²",
                 "flagged 3", "reject"):
        assert (await koc(bot, args)).startswith("用法：/koc | /koc flagged"), args
    [row] = await bot.rows(Reward)
    assert row.status == "earned"  # a decline without a reason changes nothing


async def _owner(bot: Bot, rec: Recommender) -> Member:
    async with bot.session() as session:
        owner = await session.get(Member, rec.member_id)
    assert owner is not None
    return owner



async def test_crediting_a_referee_who_left_their_group_says_what_it_became(bot: Bot) -> None:
    bot.clock.now = SETTLED
    rec = await recommender(bot.db)
    friend, referral_id = await flag(bot.db, rec)
    await change(bot.db, friend, status="left")
    text = await koc(bot, f"credit {referral_id}")
    [row] = await bot.rows(ReferralRow)
    assert row.status in ("pending", "flagged") and row.decided_by == BY
    assert text == f"推荐 #{referral_id} 已处理：{bot.flows.commands.koc.statuses[row.status]}。"
    assert await bot.rows(ReferralCredit) == []
