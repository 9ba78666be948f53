"""Operators' announcements (/announce) in the calendar. A customer group receives at most one
mass message a day, so an announcement goes out at once only to groups whose message of the
day is still free; otherwise it is held for the operator's choice: scheduled into a day's
mass message of its groups (it joins that day's task as an onboarding action does, under the
calendar's daily_cap_policy) or sent to the owners as reminders to post by hand.
Functions flush only."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar import onboarding
from app.calendar.flows import CalendarFlows
from app.calendar.models import Announcement
from app.calendar.onboarding import Campaign
from app.calendar.planner import day_posts, mass_post
from app.calendar.posts import Post, at_time
from app.engine.config import SHANGHAI

if TYPE_CHECKING:
    from app.calendar.talks import TalkFlows

HELD, SENT, SCHEDULED, REMINDED = "held", "sent", "scheduled", "reminded"
PRIORITY = 100  # an operator's announcement is the day's mass task whatever the policy


def chat_ids(row: Announcement) -> list[str]:
    return [c for c in row.chat_ids.split(",") if c]


async def scheduled_posts(session: AsyncSession, day: date) -> dict[str, Post]:
    """The announcements scheduled for `day`, as each group's own post."""
    start = at_time(day, "00:00")
    rows = await session.scalars(select(Announcement).where(
        Announcement.status == SCHEDULED, Announcement.at >= start,
        Announcement.at < start + timedelta(days=1)).order_by(Announcement.id))
    found: dict[str, Post] = {}
    for row in rows:
        assert row.at is not None  # scheduled rows have their time
        post = Post(row.at.astimezone(SHANGHAI), f"announce{row.id}", PRIORITY, text=row.text)
        for chat in chat_ids(row):
            found[chat] = join(found[chat], post) if chat in found else post
    return found


def join(first: Post, second: Post) -> Post:
    """Two posts of a group's own for one day as one (it gets one mass message): the earlier
    time, the higher priority, both texts."""
    return Post(min(first.at, second.at), f"{first.name}+{second.name}"[:120],
                max(first.priority, second.priority),
                text="\n\n".join(p.text for p in (first, second) if p.text))


async def own_posts(session: AsyncSession, campaigns: dict[str, Campaign], day: date,
                    names: dict[str, str]) -> dict[str, Post]:
    """Each group's post of its own on `day`: its scheduled announcements, then its onboarding
    action (the planner gives such a group a task of its own)."""
    own = await scheduled_posts(session, day)
    for due in await onboarding.today(session, campaigns, day, names):
        own[due.chat_id] = join(own[due.chat_id], due.post) if due.chat_id in own \
            else due.post
    return own


def task_time(calendar: CalendarFlows, segment: str | None, day: date,
              fallback: datetime, talks: TalkFlows | None = None) -> datetime:
    """When the segment's mass task of `day` goes out under the policy (an announcement
    scheduled into it takes that time); the fallback's time of day without one."""
    posts = day_posts(calendar, segment or "", day, talks)
    if not posts:
        return at_time(day, f"{fallback.astimezone(SHANGHAI):%H:%M}")
    return posts[0].at if calendar.daily_cap_policy == "merge" else mass_post(posts).at
