"""Whose one mass message of today is taken: a customer group receives at most one mass
message a day (wecom-reference §5.9), and WeCom refuses a second task for it. Taken means
queued already (calendar_group_day: a calendar task or an announcement) or still to come
today in the calendar's plan (its own posts, onboarding actions and scheduled announcements
included), not yet recorded and not yet past the grace."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar.announcements import own_posts
from app.calendar.flows import CalendarFlows
from app.calendar.models import CalendarPost, GroupDay
from app.calendar.onboarding import Campaign
from app.calendar.planner import MASS_TASK, Delivery, plan_day, render
from app.calendar.posting import delivery_key
from app.calendar.posts import Post
from app.calendar.preview import Item, groups_by_segment, queue_reader
from app.calendar.talks import TalkFlows
from app.engine.config import SHANGHAI
from app.groups.models import CustomerGroup


async def taken_today(session: AsyncSession, calendar: CalendarFlows,
                      campaigns: dict[str, Campaign], groups: list[CustomerGroup],
                      now: datetime, talks: TalkFlows | None = None) -> set[str]:
    """The chat ids of `groups` whose mass message of today is taken or planned (the
    calendar's posts with the talks')."""
    day = now.astimezone(SHANGHAI).date()
    wanted = {g.chat_id for g in groups}
    taken = set(await session.scalars(select(GroupDay.chat_id).where(
        GroupDay.day == day.isoformat(), GroupDay.chat_id.in_(wanted))))
    names = {g.chat_id: g.name or g.chat_id for g in groups}
    own = await own_posts(session, campaigns, day, names)
    by_segment = await groups_by_segment(session)
    item = await queue_reader(session, calendar, day, 1)
    coming: list[Delivery] = []
    for segment in sorted({g.segment for g in groups if g.segment}):
        owners = by_segment.get(segment, {})
        mine = {c: own[c] for chats in owners.values() for c in chats if c in own}
        # Asked in time order, as the slots take items: a task whose every post finds its
        # column empty is skipped when due, so it uses no message.
        coming += [d for d in plan_day(calendar, segment, day, owners, mine, talks)
                   if _goes_out(calendar, d, _of_segment(item, segment))
                   and d.transport == MASS_TASK and set(d.chat_ids) & wanted
                   and d.at > now - timedelta(minutes=calendar.grace_minutes)]
    recorded = set(await session.scalars(select(CalendarPost.key).where(
        CalendarPost.key.in_([delivery_key(d) for d in coming])))) if coming else set()
    for delivery in coming:
        if delivery_key(delivery) not in recorded:
            taken |= set(delivery.chat_ids) & wanted
    return taken


def _of_segment(item: Callable[[Post, str], Item], segment: str) -> Callable[[Post], Item]:
    """The item lookup for one segment's posts."""
    return lambda post: item(post, segment)


def _goes_out(calendar: CalendarFlows, delivery: Delivery,
              item: Callable[[Post], Item]) -> bool:
    """Whether the delivery has a text to send: a post of it finds its column's item."""
    return any([render(post, calendar.columns, item, calendar.slot_template) is not None
                for post in delivery.posts])
