"""The recommender programme (sop_flows/koc.yaml): a verified member asks in 微信客服 to become a
推荐官 and gets their code; referrals are settled, rewards ranked and issued, idle codes
removed and the weekly 光荣榜 made by jobs. Without koc.yaml none of it runs."""

from __future__ import annotations

from typing import Any

from app.engine.bot.context import Ctx
from app.engine.bot.env import Env
from app.engine.bot.filters import Filter
from app.engine.bot.router import Router
from app.engine.logs import get_logger
from app.engine.outbox.sender import SettledHook
from app.engine.wecom.kf_events import KfCustomerText
from app.flows import Flows
from app.keywords.rules import Answer, normalise
from app.kf import replies
from app.koc import honor, recommenders, referrals, rewards, webhook
from app.koc.links import koc_links
from app.members import service as members

log = get_logger("sopbot.koc")
SETTLE_S, ISSUE_S, DAILY_S, HOURLY_S = 60, 60, 6 * 3600, 3600


class AsksToRecommend(Filter):
    """A kf message that is one of koc.yaml's ask words, or a click on its menu item."""

    def check(self, event: Any, ctx: Ctx[Flows]) -> bool:
        koc = ctx.flows.koc
        if koc is None or not isinstance(event, KfCustomerText):
            return False
        if koc.ask.menu_id and event.menu_id == koc.ask.menu_id:
            return True
        said = normalise(event.content)
        return any(normalise(word) == said for word in koc.ask.words)


async def enrol_on_request(event: KfCustomerText, ctx: Ctx[Flows]) -> None:
    """A verified member who asks becomes a recommender and gets their code (now, or as soon
    as WeCom has made it); anyone else is told what it takes."""
    koc = ctx.flows.koc
    assert koc is not None
    row = await replies.conversation(ctx.session, event)
    if row is None or replies.with_person(row, ctx.now):
        return
    member = await members.by_external_userid(ctx.session, event.external_userid)
    done = (await recommenders.enrol(ctx.session, member, "asked", ctx.now, koc,
                                     ctx.flows.funnel, kfid=event.open_kfid)
            if member is not None else recommenders.Enrolment(recommenders.NOT_ELIGIBLE))
    texts, links = koc.texts, koc_links(ctx.settings)
    if done.outcome == recommenders.READY and member is not None and done.recommender:
        text = texts.joined.format(qr_code=done.recommender.qr_code or "",
                                   share_url=links.share_url(done.recommender.short_id),
                                   page_url=links.url(member.external_userid))
    else:
        text = {recommenders.COMING: texts.code_coming, recommenders.FULL: texts.full}.get(
            done.outcome, texts.not_eligible)
    ctx.log.info("recommender_asked", outcome=done.outcome)
    await replies.answer(ctx, event, row, Answer(text=text), f"kocask:{event.message.msgid}")


def _code_settled(env: Env[Flows]) -> SettledHook:
    if env.flows.koc is None:
        return _nothing  # no programme: no such rows are queued
    return recommenders.code_settled(recommenders.Delivery(
        env.flows.koc, koc_links(env.settings), env.settings.agent_id))


async def _nothing(*_: object) -> None:
    return None


async def settle_referrals(env: Env[Flows]) -> None:
    """Pending referrals whose outcome is clear are credited, rejected or flagged."""
    if env.flows.koc is None:
        return
    async with env.db.unit_of_work() as session:
        counts = await referrals.settle(session, env.clock(), env.flows.koc)
    if counts:
        log.info("referrals_settled", **counts)


async def rank_last_month(env: Env[Flows]) -> None:
    """Once a month is over, its top recommenders of each segment earn the rank rewards."""
    if env.flows.koc is None:
        return
    now = env.clock()
    async with env.db.unit_of_work() as session:
        await rewards.monthly_ranks(session, rewards.previous_month(now), now, env.flows.koc)


async def issue_rewards(env: Env[Flows]) -> None:
    """Approved rewards go to the platform's webhook, signed (when one is configured)."""
    url, secret = env.settings.koc_webhook_url, env.settings.koc_webhook_secret
    if env.flows.koc is None or url is None or secret is None:
        return
    counts = await webhook.issue_approved(
        env.db, webhook.Webhook(url, secret.get_secret_value()), env.clock())
    if counts["issued"] or counts["failed"]:
        log.info("rewards_sent", **counts)


async def remove_idle_codes(env: Env[Flows]) -> None:
    """Recommender codes nobody came through for codes.idle_days are deleted in WeCom."""
    if env.flows.koc is None:
        return
    async with env.db.unit_of_work() as session:
        await recommenders.remove_idle_codes(session, env.clock(), env.flows.koc)


async def make_honor_roll(env: Env[Flows]) -> None:
    """On honor_roll.weekday, each segment's 光荣榜 is queued in its calendar column (its
    groups are read again the day before, for their members' group nicknames)."""
    koc = env.flows.koc
    if koc is None or koc.honor_roll is None:
        return
    async with env.db.unit_of_work() as session:
        await honor.refresh_nicknames(session, koc, env.flows.calendar, env.clock())
        await honor.make_week(session, koc, env.flows.calendar,
                              env.flows.routing.segment_labels(), env.clock())


def router() -> Router:
    koc = Router("koc")
    koc.add(KfCustomerText, enrol_on_request, AsksToRecommend())
    koc.on_settled(recommenders.CODE_KIND, _code_settled)
    koc.every(SETTLE_S, settle_referrals, on_lead=True)
    koc.every(HOURLY_S, rank_last_month, on_lead=True)
    koc.every(ISSUE_S, issue_rewards)
    koc.every(DAILY_S, remove_idle_codes)
    koc.every(HOURLY_S, make_honor_roll, on_lead=True)
    return koc
