"""`sopbot calendar preview`, `/calendar` and the console's calendar page: the plan for the next
days, rendered with what the content queue holds now (each slot takes the next item of its
column, day after day), without sending or taking anything. `plan` gives it as data, `preview`
as the command's lines."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar import announcements, content, talk_invites
from app.calendar.flows import WEEKDAYS, CalendarFlows
from app.calendar.models import ContentItem
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
from app.calendar.talk_invites import INVITATION
from app.calendar.talks import TalkFlows, schedule_lines
from app.groups.models import LIVE, CustomerGroup

Item = dict[str, str] | None
SHOWN = 24  # characters of a post shown in the preview
TRANSPORTS = {MASS_TASK: "mass task →", OWNER_REMINDER: "reminder →", ROBOT: "robot",
              APPCHAT: "appchat", INVITATION: "invitation from"}


@dataclass(frozen=True)
class PlannedText:
    """One post of a delivery as it would go out now."""

    post: Post
    label: str  # the column's label ("" for a greeting)
    text: str | None  # None: the column's queue is empty, the slot is skipped
    generated: bool = False  # the column is sopbot's to fill on its day (not a gap)


@dataclass(frozen=True)
class Planned:
    delivery: Delivery
    texts: list[PlannedText]


@dataclass(frozen=True)
class SegmentDay:
    segment: str
    groups: int  # live customer groups with an owner
    owners: int
    deliveries: list[Planned]


@dataclass(frozen=True)
class PlanDay:
    day: date
    segments: list[SegmentDay]

    @property
    def weekday(self) -> str:
        return f"周{WEEKDAYS[self.day.weekday()]}"


async def groups_by_segment(session: AsyncSession) -> dict[str, dict[str, list[str]]]:
    """Live customer groups: segment → owner → chat ids."""
    found: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    rows = await session.execute(select(CustomerGroup.segment, CustomerGroup.owner,
                                        CustomerGroup.chat_id)
                                 .where(CustomerGroup.status == LIVE,
                                        CustomerGroup.segment.is_not(None))
                                 .order_by(CustomerGroup.id))
    for segment, owner, chat_id in rows:
        if owner and segment is not None:  # the query leaves out groups without one
            found[segment][owner].append(chat_id)
    return found


async def plan(session: AsyncSession, calendar: CalendarFlows, start: date, days: int,
               segment: str | None = None,
               campaigns: dict[str, Campaign] | None = None,
               talks: TalkFlows | None = None) -> list[PlanDay]:
    """Every day's deliveries per segment of calendar.yaml (and of talks.yaml), with their
    texts; a newcomers' Q&A's invitations with the joiners known now."""
    groups = await groups_by_segment(session)
    names = {chat_id: name for chat_id, name in await session.execute(
        select(CustomerGroup.chat_id, CustomerGroup.name))}
    item = await queue_reader(session, calendar, start, days)
    talked = [s for t in (talks.talks.values() if talks else ()) for s in t.segments]
    shown = [*calendar.segments, *(s for s in dict.fromkeys(talked) if s not in calendar.segments)]
    found = []
    for n in range(days):
        day = start + timedelta(days=n)
        own = await announcements.own_posts(session, campaigns or {}, day, names)
        found.append(PlanDay(day, [
            await _segment_day(session, calendar, talks, name, day, groups.get(name, {}), item,
                               own)
            for name in shown if segment is None or name == segment]))
    return found


async def queue_reader(session: AsyncSession, calendar: CalendarFlows, start: date,
                       days: int) -> Callable[[Post, str], Item]:
    """An item lookup that hands each (segment, day, post) the next queued item of its
    column, once, in the order asked: as the slots would take them."""
    # An item made for one segment (a 光荣榜) is taken only by that segment's slots.
    upcoming = {column: [(i.segment, dict(title=i.title, body=i.body, link=i.link or ""))
                         for i in await content.queued(session, column, limit=500)]
                for column in calendar.columns}
    # A post that took its item already (a slot of today that went out, a talk whose
    # announcement did) shows it again, and does not take the next one.
    window = [f"%:{start + timedelta(days=n):%Y%m%d}:%" for n in range(days)]
    taken: dict[str, Item] = {
        i.used_for: dict(title=i.title, body=i.body, link=i.link or "")
        for i in await session.scalars(select(ContentItem).where(
            or_(ContentItem.used_for.like("talk:%"),
                *(ContentItem.used_for.like(day) for day in window)),
            ContentItem.used_at.is_not(None))
            .order_by(ContentItem.used_at.desc()).limit(200 + 50 * days)) if i.used_for}

    def item(post: Post, segment: str) -> Item:
        key = post.item_key(segment)
        if key not in taken:
            queue = upcoming.get(post.column or "", [])
            n = next((n for n, (only, _) in enumerate(queue) if only in (None, segment)), None)
            taken[key] = queue.pop(n)[1] if n is not None else None
        return taken[key]

    return item


async def _segment_day(session: AsyncSession, calendar: CalendarFlows,
                       talks: TalkFlows | None, name: str, day: date,
                       owners: dict[str, list[str]], item: Callable[[Post, str], Item],
                       own: dict[str, Post]) -> SegmentDay:
    mine = {c: own[c] for chats in owners.values() for c in chats if c in own}
    planned = plan_day(calendar, name, day, owners, mine, talks)
    planned += await talk_invites.invitations(session, talks, name, day)
    deliveries = [Planned(d, _texts(d, calendar, lambda post: item(post, name)))
                  for d in sorted(planned, key=lambda d: (d.at, d.transport, d.target))]
    return SegmentDay(name, sum(len(chats) for chats in owners.values()), len(owners),
                      deliveries)


def _texts(delivery: Delivery, calendar: CalendarFlows,
           item: Callable[[Post], Item]) -> list[PlannedText]:
    return [PlannedText(post, calendar.columns.get(post.column or "", ""),
                        render(post, calendar.columns, item, calendar.slot_template),
                        post.column in calendar.generated)
            for post in delivery.posts]


async def preview(session: AsyncSession, calendar: CalendarFlows, start: date, days: int,
                  segment: str | None = None,
                  campaigns: dict[str, Campaign] | None = None,
                  talks: TalkFlows | None = None) -> list[str]:
    """The plan as `sopbot calendar preview` prints it."""
    lines = [f"calendar {start:%Y-%m-%d} to {start + timedelta(days=days - 1):%Y-%m-%d} "
             f"(Asia/Shanghai), daily cap policy: {calendar.daily_cap_policy}"]
    lines += [f"talk {line}" for line in schedule_lines(talks, segment)] if talks else []
    for planned_day in await plan(session, calendar, start, days, segment, campaigns, talks):
        lines.append(f"{planned_day.day:%Y-%m-%d} {planned_day.weekday}")
        for found in planned_day.segments:
            lines += _segment_lines(found)
    return lines


def _segment_lines(found: SegmentDay) -> list[str]:
    lines = [f"  {found.segment}: {found.groups} customer group(s), {found.owners} owner(s)"]
    if not found.deliveries:
        lines.append("    nothing to post")
    lines += [f"    {_line(planned)}" for planned in found.deliveries]
    return lines


def _line(planned: Planned) -> str:
    delivery = planned.delivery
    where = f"{TRANSPORTS[delivery.transport]} {delivery.target}"
    if delivery.transport == INVITATION:
        where += f" ({delivery.label}: {len(delivery.customers)} newcomer(s))"
    elif delivery.label:
        where += f" ({delivery.label}, {own_kind(delivery)})"
    elif delivery.chat_ids:
        where += f" ({len(delivery.chat_ids)} group(s))"
    texts = [short(t.text) if t.text is not None
             else f"({t.label}: made by sopbot on the day)" if t.generated
             else f"({t.label}: queue empty, skipped)" for t in planned.texts]
    return f"{delivery.at:%H:%M} {where}: " + " | ".join(texts)


# What a post is, by the prefix of its name (the names are the posts' stored keys): an
# operator's announcement (announce12), an onboarding action (sop.7d.d3), a talk's post
# (talk.guest_shops.announce, which is not an operator's announcement).
OWN_KINDS = (("announce", "announcement"), ("sop.", "onboarding"), ("talk.", "talk"))


def own_kind(delivery: Delivery) -> str:
    """What a group's task of its own carries: an onboarding action, an announcement, a talk's
    post, or several."""
    return " + ".join(kind for prefix, kind in OWN_KINDS
                      if any(post.name.startswith(prefix) for post in delivery.posts))


def short(text: str, limit: int = SHOWN) -> str:
    """The text's first line, cut to `limit` characters."""
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= limit else first[:limit - 1] + "…"
