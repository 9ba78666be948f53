"""Posting the calendar: every delivery of the day whose time has come is queued in the outbox
once (a calendar_post row and an outbox row, both keyed by the delivery), so a restart, a
misfire or a second scheduler never posts twice. A delivery found later than the grace is
skipped and recorded, not posted late; a slot whose column is empty is left out and said so.
Runs in one unit of work per call (the calendar behaviour's job, handlers/calendar.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar import announcements, content, onboarding, talk_invites
from app.calendar.flows import CalendarFlows
from app.calendar.models import CalendarPost, GroupDay
from app.calendar.onboarding import Campaign
from app.calendar.planner import (
    APPCHAT,
    MASS_TASK,
    OWNER_REMINDER,
    ROBOT,
    Delivery,
    plan_day,
    render,
)
from app.calendar.posts import Post
from app.calendar.preview import groups_by_segment
from app.calendar.talk_invites import INVITATION
from app.calendar.talks import TalkFlows
from app.engine.config import SHANGHAI
from app.engine.db import Database
from app.engine.logs import get_logger
from app.engine.outbox import store as outbox
from app.engine.wecom.api import SendAppChat, SendMessage, Text, WebhookSend, WebhookText
from app.engine.wecom.api_base import MAX_ATTACHMENTS, Attachment, Image
from app.engine.wecom.api_outreach import AddMsgTemplate
from app.groups.models import CustomerGroup

log = get_logger("sopbot.calendar")
POST_KIND = "calendar_post"
QUEUED, SKIPPED = "queued", "skipped"


@dataclass
class Report:
    queued: int = 0
    skipped: list[str] = field(default_factory=list)  # keys, with why


@dataclass(frozen=True)
class _Run:
    """What every delivery of one post_due call is judged with."""
    calendar: CalendarFlows
    now: datetime
    agent_id: int | None
    robots: set[str] | None  # the robots configured; None: any
    names: dict[str, str]  # group names by chat_id, for the owners' reminders
    report: Report

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.calendar.grace_minutes)


def _days(calendar: CalendarFlows, groups: dict[str, Any], day: date, now: datetime,
          grace: timedelta) -> list[tuple[str, date]]:
    """(segment, day) to plan: today, and yesterday while its last posts are in the grace."""
    days = [day]
    if (now - grace).astimezone(SHANGHAI).date() < day:
        days.insert(0, day - timedelta(days=1))
    return [(segment, d) for d in days for segment in sorted(set(calendar.segments) | set(groups))]


def delivery_key(delivery: Delivery) -> str:
    first = delivery.posts[0]
    label = f":{delivery.label}" if delivery.label else ""
    return (f"cal:{delivery.segment}:{first.at:%Y%m%d}:{first.name}:{delivery.transport}:"
            f"{delivery.target}{label}")[:200]


async def post_due(db: Database, calendar: CalendarFlows, now: datetime,
                   agent_id: int | None, campaigns: dict[str, Campaign] | None = None,
                   robots: set[str] | None = None, talks: TalkFlows | None = None) -> Report:
    """Queue what is due now (within the grace), record what was missed: the calendar's
    posts with the talks' (sop_flows/talks.yaml) and their personal invitations. Onboarding
    runs are started and advanced in the same unit of work."""
    campaigns = campaigns or {}
    grace = timedelta(minutes=calendar.grace_minutes)
    day = now.astimezone(SHANGHAI).date()
    async with db.unit_of_work() as session:
        await onboarding.start_due(session, campaigns, now)
        groups = await groups_by_segment(session)
        names = {chat_id: name for chat_id, name in await session.execute(
            select(CustomerGroup.chat_id, CustomerGroup.name))}
        own = await announcements.own_posts(session, campaigns, day, names)
        run = _Run(calendar, now, agent_id, robots, names, Report())
        for segment, plan_for in _days(calendar, groups, day, now, grace):
            chats = groups.get(segment, {})
            mine = {c: own[c] for owner in chats.values() for c in owner if c in own} \
                if plan_for == day else {}
            planned = plan_day(calendar, segment, plan_for, chats, mine, talks)
            planned += await talk_invites.invitations(session, talks, segment, plan_for,
                                                      (now - grace, now))
            for delivery in planned:
                if delivery.at <= now:
                    await _post(session, run, delivery)
        await onboarding.advance(session, campaigns, day)
    return run.report


async def _post(session: AsyncSession, run: _Run, delivery: Delivery) -> None:
    """Queue one due delivery (once: its key is recorded), or record why it is skipped."""
    key, report = delivery_key(delivery), run.report
    if await session.scalar(select(CalendarPost.id).where(CalendarPost.key == key)):
        return  # done already (this run, an earlier one, or another scheduler)
    if delivery.transport == ROBOT and run.robots is not None \
            and delivery.target not in run.robots:
        return await _skip(session, delivery, key, "robot not configured (SOPBOT_ROBOTS)",
                           report)
    if run.now - delivery.at > run.grace:
        return await _skip(session, delivery, key, "missed: later than the grace", report)
    if delivery.transport == MASS_TASK:
        delivery = await _unserved(session, delivery)
        if not delivery.chat_ids:
            return await _skip(session, delivery, key, "its groups had today's mass message",
                               report)
    # Content is taken in a savepoint: a delivery that is not sent gives its items back.
    async with session.begin_nested() as taking:
        images: list[str] = []
        texts = [text for post in delivery.posts
                 if (text := await _text(session, run, delivery, post, images)) is not None]
        try:
            names = [run.names.get(c) or c for c in delivery.chat_ids]
            call = _call(delivery, "\n\n".join(texts), run.agent_id, names,
                         run.calendar.texts.owner_reminder, images) if texts else None
            problem = None if call is not None else (
                "the column's content queue is empty" if not texts
                else "WECOM_AGENT_ID is not set")
        except ValidationError as exc:  # e.g. a merged day longer than WeCom takes
            call, problem = None, f"cannot be sent: {exc.errors(include_url=False)[0]['msg']}"
        if problem is not None:
            await taking.rollback()
    if call is None:
        return await _skip(session, delivery, key, problem or "nothing to send", report)
    # A task from yesterday would use up today's one message: it expires with its day.
    await outbox.enqueue(session, key, call, kind=POST_KIND, deadline=end_of_day(delivery.at))
    session.add(_record(delivery, key, QUEUED, None))
    if delivery.transport == MASS_TASK:
        mark_taken(session, delivery.chat_ids, delivery.at, key)
    report.queued += 1


async def _unserved(session: AsyncSession, delivery: Delivery) -> Delivery:
    """The delivery without the groups that had their mass message today already."""
    served = set(await session.scalars(select(GroupDay.chat_id).where(
        GroupDay.day == f"{delivery.at:%Y-%m-%d}", GroupDay.chat_id.in_(delivery.chat_ids))))
    return replace(delivery, chat_ids=tuple(c for c in delivery.chat_ids if c not in served))


def end_of_day(at: datetime) -> datetime:
    """The end of `at`'s day in Asia/Shanghai: a mass task not sent by then would use up the
    next day's one message, so it expires."""
    return datetime.combine(at.astimezone(SHANGHAI).date() + timedelta(days=1), time(0),
                            SHANGHAI)


def mark_taken(session: AsyncSession, chats: Iterable[str], at: datetime, key: str) -> None:
    """These groups' one mass message of `at`'s day is used (by the post or announcement
    `key`): the calendar leaves them out of that day's tasks."""
    day = f"{at.astimezone(SHANGHAI):%Y-%m-%d}"
    session.add_all(GroupDay(chat_id=chat, day=day, post_key=key) for chat in chats)


async def _text(session: AsyncSession, run: _Run, delivery: Delivery, post: Post,
                images: list[str]) -> str | None:
    """The post's text; an item's image is added to `images` (a mass task's attachments)."""
    item: dict[str, str] | None = None
    if post.column is not None:
        key = post.item_key(delivery.segment)
        taken = await content.take(session, post.column, key, run.now, delivery.segment)
        if taken is None:
            log.warning("calendar_slot_empty", segment=delivery.segment, slot=post.name,
                        column=post.column)
        else:
            item = {"title": taken.title, "body": taken.body, "link": taken.link or ""}
            images += [taken.image_url] if taken.image_url else []
    return render(post, run.calendar.columns, lambda _post: item, run.calendar.slot_template)


def _call(delivery: Delivery, text: str, agent_id: int | None, names: list[str],
          reminder_text: str, images: list[str]) -> Any:
    attachments = [Attachment(msgtype="image", image=Image(pic_url=url))
                   for url in images[:MAX_ATTACHMENTS]] or None
    if delivery.transport == MASS_TASK:
        return AddMsgTemplate(chat_type="group", sender=delivery.target,
                              chat_id_list=list(delivery.chat_ids), text=Text(content=text),
                              attachments=attachments)
    if delivery.transport == INVITATION:  # one to one, from the staff member who added them
        return AddMsgTemplate(chat_type="single", sender=delivery.target,
                              external_userid=list(delivery.customers),
                              text=Text(content=text), attachments=attachments)
    if delivery.transport == OWNER_REMINDER:
        if agent_id is None:
            return None
        reminder = reminder_text.format(groups="、".join(names), text=text)
        return SendMessage(agentid=agent_id, touser=delivery.target, msgtype="text",
                           text=Text(content=reminder))
    if delivery.transport == ROBOT:
        return WebhookSend(robot=delivery.target, msgtype="text",
                           text=WebhookText(content=text))
    assert delivery.transport == APPCHAT
    return SendAppChat(chatid=delivery.target, msgtype="text", text=Text(content=text))


async def _skip(session: AsyncSession, delivery: Delivery, key: str, reason: str,
                report: Report) -> None:
    session.add(_record(delivery, key, SKIPPED, reason))
    report.skipped.append(f"{key}: {reason}")
    log.warning("calendar_post_skipped", key=key, reason=reason)


def _record(delivery: Delivery, key: str, status: str, reason: str | None) -> CalendarPost:
    first = delivery.posts[0]
    return CalendarPost(key=key, segment=delivery.segment, day=f"{first.at:%Y-%m-%d}",
                        at=delivery.at, transport=delivery.transport, target=delivery.target,
                        posts=",".join(p.name for p in delivery.posts)[:200], status=status,
                        reason=reason, reminders=0)
