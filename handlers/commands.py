"""Operator commands sent to the self-built app; quick answers ride on the passive reply."""

from __future__ import annotations

import re

from app.calendar import announce
from app.calendar.preview import preview as calendar_preview
from app.engine.bot.context import Ctx
from app.engine.bot.filters import Command, FromOperator
from app.engine.bot.router import Router
from app.engine.config import SHANGHAI
from app.engine.wecom.events import TextMessage
from app.flows import Flows
from app.funnel import labels
from app.funnel.report import ReportError
from app.koc import referrals, rewards
from app.koc import stats as koc_stats
from app.koc.models import REJECTED as REFERRAL_REJECTED
from app.koc.models import Reward
from app.routing.service import after_approval
from app.verify import service as verify
from app.verify.checks import describe
from app.verify.models import APPROVED, REJECTED

ANNOUNCE_BYTES = 4000  # a mass-send task's text
ANNOUNCE_USAGE = (f"/announce 分群或群名 内容（内容不超过 {ANNOUNCE_BYTES} 字节）｜"
                  "/announce tomorrow 编号｜/announce remind 编号")
CHOICES = ("tomorrow", "remind")  # what an operator does with a held announcement
NAMES_SHOWN = 10  # groups named in the answer
KOC_USAGE = ("/koc | /koc flagged | /koc credit 编号 | /koc reject 编号 | /koc approve 编号 | "
             "/koc decline 编号 原因")
KOC_DECISIONS = ("credit", "reject", "approve", "decline")
NUMBER = re.compile(r"#?[0-9]{1,18}")


async def refuse_non_operator(event: TextMessage, ctx: Ctx[Flows]) -> None:
    """Only SOPBOT_OPERATORS may run commands; anyone else gets a polite refusal, logged."""
    ctx.log.warning("command_refused", user=event.from_user_name, command=ctx.data["command"])
    ctx.reply_text(event.from_user_name, ctx.flows.commands.not_operator)


async def answer_help(event: TextMessage, ctx: Ctx[Flows]) -> None:
    """/help lists the commands an operator can run."""
    ctx.reply_text(event.from_user_name, ctx.flows.commands.help)


async def answer_unknown_command(event: TextMessage, ctx: Ctx[Flows]) -> None:
    """An unknown /command gets a clear answer pointing to /help."""
    ctx.log.info("command_unknown", command=ctx.data["command"])
    text = ctx.flows.commands.unknown_command.format(command=ctx.data["command"])
    ctx.reply_text(event.from_user_name, text)


async def answer_stats(event: TextMessage, ctx: Ctx[Flows]) -> None:
    """/stats [channel|slot|segment|region] [24h|7d|30d]: the funnel with conversion."""
    try:
        report = await labels.command_report(ctx.session, ctx.data["args"].split(), ctx.now,
                                       ctx.flows)
    except ReportError:
        return _usage(event, ctx, "/stats [channel|slot|segment|region] [24h|7d|30d]")
    await ctx.answer_text(event.from_user_name, report, ctx.flows.commands.sent_separately)


async def answer_review(event: TextMessage, ctx: Ctx[Flows]) -> None:
    """/review lists what waits; /review approve ID and /review reject ID REASON decide."""
    texts, args = ctx.flows.commands.review, ctx.data["args"].split(maxsplit=2)
    if not args:
        count, pending = await verify.pending_reviews(ctx.session)
        identities = ctx.flows.verify.identity_types
        lines = "\n".join(texts.line.format(id=p.id, phone=p.phone, region=p.region,
                                            identity=identities.get(p.identity_type, ""))
                          + _flags(p, ctx) for p in pending)
        text = texts.pending.format(count=count, lines=lines) if count else texts.none_pending
        return await ctx.answer_text(event.from_user_name, text,
                                     ctx.flows.commands.sent_separately)
    decision = {"approve": APPROVED, "move": APPROVED, "reject": REJECTED}.get(args[0].lower())
    if decision is None or len(args) < 2 or not re.fullmatch(r"[0-9]{1,18}", args[1]) \
            or (decision == REJECTED and len(args) < 3):
        return _usage(event, ctx, "/review | /review approve 编号 | /review move 编号 | "
                                  "/review reject 编号 原因")
    ctx.reply_text(event.from_user_name,
                   await _decide(ctx, int(args[1]), decision, args[2] if len(args) > 2 else None,
                                 event.from_user_name, move=args[0].lower() == "move"))


def _flags(pending: verify.PendingReview, ctx: Ctx[Flows]) -> str:
    """Why a review waits for a person (a phone another member holds, a photo too small…)."""
    notes = ctx.flows.verify.review_notes
    return "".join(f"\n  ⚠ {describe(check, notes)}" for check in pending.checks)


async def _decide(ctx: Ctx[Flows], review_id: int, status: str, reason: str | None,
                  operator: str, move: bool = False) -> str:
    texts = ctx.flows.commands.review
    labels = {APPROVED: "通过", REJECTED: "未通过"}
    try:
        await verify.decide(ctx.session, review_id, status, f"wecom:{operator}", reason, ctx.now,
                            after_approval(ctx.flows, ctx.settings), move)
    except verify.LinkHeld as exc:
        held = "、".join(f"#{i}" for i in exc.holders)
        return ctx.flows.verify.review_notes.command_held.format(id=review_id, members=held)
    except verify.ReviewNotFound:
        return texts.not_found.format(id=review_id)
    except verify.AlreadyDecided as exc:
        return texts.already_decided.format(id=review_id, status=labels.get(exc.status, ""),
                                            reviewer=exc.reviewer or "")
    ctx.log.info("review_decided_by_command", verification_id=review_id, status=status,
                 operator=operator)
    return texts.decided.format(id=review_id, status=labels[status])


async def answer_announce(event: TextMessage, ctx: Ctx[Flows]) -> None:
    """/announce SEGMENT-or-GROUP TEXT: a mass-send task for each owner of those groups, unless
    one of them has had its mass message of today: then it is held, and the answer offers
    /announce tomorrow ID (tomorrow's mass message) or /announce remind ID (owner reminders)."""
    args = ctx.data["args"].split(maxsplit=1)
    if args and args[0].lower() in CHOICES:
        return await _choose(event, ctx, args)
    if len(args) < 2 or len(args[1].encode("utf-8")) > ANNOUNCE_BYTES:
        return _usage(event, ctx, ANNOUNCE_USAGE)
    texts = ctx.flows.commands.announce
    done = await announce.announce(ctx.session, ctx.flows.calendar, ctx.flows.onboarding,
                                    args[0], args[1], event.from_user_name, ctx.now,
                                    ctx.flows.talks)
    if done.row is None:
        text = texts.no_groups.format(target=args[0])
    elif done.taken:
        text = texts.held.format(id=done.row.id, count=len(done.taken), total=done.groups,
                                 names="、".join(done.taken[:NAMES_SHOWN])
                                 + ("…" if len(done.taken) > NAMES_SHOWN else ""))
    else:
        text = texts.created.format(groups=done.groups, owners=done.owners)
    ctx.reply_text(event.from_user_name, text)


async def _choose(event: TextMessage, ctx: Ctx[Flows], args: list[str]) -> None:
    """/announce tomorrow ID | /announce remind ID: what becomes of a held announcement."""
    texts, choice = ctx.flows.commands.announce, args[0].lower()
    if len(args) < 2 or not re.fullmatch(r"#?[0-9]{1,18}", args[1].strip()):
        return _usage(event, ctx, ANNOUNCE_USAGE)
    number = int(args[1].strip().lstrip("#"))
    row = await announce.held(ctx.session, number)
    if row is None:
        return ctx.reply_text(event.from_user_name, texts.not_held.format(id=number))
    if choice == "tomorrow":
        done = await announce.schedule(ctx.session, ctx.flows.calendar, row, ctx.now,
                                         ctx.flows.talks)
        assert done.row is not None and done.row.at is not None  # scheduled: it has its time
        at = done.row.at.astimezone(SHANGHAI)
        text = texts.scheduled.format(id=number, groups=done.groups, owners=done.owners,
                                      day=f"{at:%m-%d}", time=f"{at:%H:%M}")
    elif ctx.settings.agent_id is None:
        text = texts.no_agent
    else:
        done = await announce.remind(ctx.session, row,
                                      ctx.flows.calendar.texts.owner_reminder,
                                      ctx.settings.agent_id, ctx.now)
        text = texts.reminded.format(groups=done.groups, owners=done.owners)
    ctx.log.info("announcement_decided", announcement_id=number, choice=choice)
    ctx.reply_text(event.from_user_name, text)


async def answer_calendar(event: TextMessage, ctx: Ctx[Flows]) -> None:
    """/calendar [today|week]: what the calendar posts where, today or the next 7 days."""
    if ctx.data["args"] not in ("", "today", "week"):
        return _usage(event, ctx, "/calendar [today|week]")
    if not ctx.flows.calendar.segments:
        return ctx.reply_text(event.from_user_name, ctx.flows.commands.calendar.not_configured)
    days = 7 if ctx.data["args"] == "week" else 1
    lines = await calendar_preview(ctx.session, ctx.flows.calendar,
                                   ctx.now.astimezone(SHANGHAI).date(), days,
                                   campaigns=ctx.flows.onboarding, talks=ctx.flows.talks)
    await ctx.answer_text(event.from_user_name, "\n".join(lines),
                          ctx.flows.commands.sent_separately)


async def answer_koc(event: TextMessage, ctx: Ctx[Flows]) -> None:
    """/koc: the referral programme's numbers; /koc flagged: the referrals waiting for an
    operator, decided by /koc credit ID or /koc reject ID; /koc approve ID and
    /koc decline ID REASON decide an earned reward. Nothing without sop_flows/koc.yaml."""
    if ctx.flows.koc is None:
        return ctx.reply_text(event.from_user_name, ctx.flows.commands.koc.not_configured)
    args = ctx.data["args"].split(maxsplit=2)
    if not args:
        return await ctx.answer_text(event.from_user_name, await _koc_stats(ctx),
                                     ctx.flows.commands.sent_separately)
    action = args[0].lower()
    if action == "flagged" and len(args) == 1:
        return await ctx.answer_text(event.from_user_name, await _koc_flagged(ctx),
                                     ctx.flows.commands.sent_separately)
    if action not in KOC_DECISIONS or len(args) < 2 or not NUMBER.fullmatch(args[1]) \
            or (action == "decline" and len(args) < 3):
        return _usage(event, ctx, KOC_USAGE)
    number, operator = int(args[1].lstrip("#")), f"wecom:{event.from_user_name}"
    if action in ("credit", "reject"):
        text = await _koc_referral(ctx, number, action == "credit", operator)
    else:
        text = await _koc_reward(ctx, number, action, operator, args[2] if len(args) > 2 else None)
    ctx.reply_text(event.from_user_name, text)


async def _koc_stats(ctx: Ctx[Flows]) -> str:
    texts, seen = ctx.flows.commands.koc, await koc_stats.overview(ctx.session, ctx.now)
    top = "\n".join(texts.top_line.format(place=n, name=r.name, count=r.count)
                    for n, r in enumerate(seen.top, 1)) or texts.no_top
    # The statuses are the text's placeholders (koc/models.py's values).
    by_status = {status: seen.referrals.get(status, 0) for status in (
        "pending", "credited", "rejected", "not_first")}
    return texts.stats.format(month=seen.month, recommenders=seen.recommenders,
                              referrals=sum(seen.referrals.values()), **by_status,
                              flagged_month=seen.referrals.get("flagged", 0),
                              credits=seen.credited, flagged=seen.flagged, earned=seen.earned,
                              top=top)


async def _koc_flagged(ctx: Ctx[Flows]) -> str:
    texts = ctx.flows.commands.koc
    count, rows = await koc_stats.flagged(ctx.session)
    if not count:
        return texts.none_flagged
    lines = "\n".join(texts.flagged_line.format(
        id=r.id, recommender=r.recommender, referee=r.referee_member_id,
        reason=texts.reasons.get(r.reason, r.reason),
        at=f"{r.added_at.astimezone(SHANGHAI):%m-%d %H:%M}") for r in rows)
    return texts.flagged.format(count=count, lines=lines)


async def _koc_referral(ctx: Ctx[Flows], number: int, credit: bool, operator: str) -> str:
    texts, koc = ctx.flows.commands.koc, ctx.flows.koc
    assert koc is not None
    referral = await koc_stats.flagged_referral(ctx.session, number)
    if referral is None:
        return texts.referral_not_flagged.format(id=number)
    status = await referrals.decide_flagged(ctx.session, referral, credit, operator, ctx.now, koc)
    ctx.log.info("koc_referral_decided_by_command", referral_id=number, status=status,
                 reason=referral.reason, operator=operator)
    shown = texts.statuses.get(status, status)
    if status == REFERRAL_REJECTED and referral.reason in texts.reasons:
        shown += f"（{texts.reasons[referral.reason]}）"
    return texts.referral_decided.format(id=number, status=shown)


async def _koc_reward(ctx: Ctx[Flows], number: int, action: str, operator: str,
                      reason: str | None) -> str:
    texts = ctx.flows.commands.koc
    if not await rewards.decide(ctx.session, [number], action, operator, ctx.now, reason):
        return texts.reward_not_waiting.format(id=number)
    reward = await ctx.session.get(Reward, number)
    assert reward is not None  # decided just now
    done = texts.reward_approved if action == "approve" else texts.reward_declined
    return done.format(id=number, label=reward.label)


def _usage(event: TextMessage, ctx: Ctx[Flows], usage: str) -> None:
    ctx.reply_text(event.from_user_name, ctx.flows.commands.bad_arguments.format(usage=usage))


def router() -> Router:
    commands = Router("commands")
    commands.add(TextMessage, refuse_non_operator, Command(), ~FromOperator())
    commands.add(TextMessage, answer_help, Command("help"))
    commands.add(TextMessage, answer_stats, Command("stats"))
    commands.add(TextMessage, answer_review, Command("review"))
    commands.add(TextMessage, answer_announce, Command("announce"))
    commands.add(TextMessage, answer_calendar, Command("calendar"))
    commands.add(TextMessage, answer_koc, Command("koc"))
    commands.add(TextMessage, answer_unknown_command, Command())
    return commands
