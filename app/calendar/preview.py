"""`sopbot calendar preview` and `/calendar`: the plan for the next days, rendered with what the
content queue holds now (each slot takes the next item of its column, day after day), without
sending or taking anything."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar import content, onboarding
from app.calendar.flows import CalendarFlows
from app.calendar.onboarding import Campaign
from app.calendar.planner import (
    APPCHAT,
    MASS_TASK,
    OWNER_REMINDER,
    ROBOT,
    Delivery,
    Post,
    plan_day,
    render,
)
from app.groups.models import LIVE, CustomerGroup

WEEKDAYS = "一二三四五六日"
Item = dict[str, str] | None
SHOWN = 24  # characters of a post shown in the preview
TRANSPORTS = {MASS_TASK: "mass task →", OWNER_REMINDER: "reminder →", ROBOT: "robot",
              APPCHAT: "appchat"}


async def groups_by_segment(session: AsyncSession) -> dict[str, dict[str, list[str]]]:
    """Live customer groups: segment → owner → chat ids."""
    found: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    rows = await session.execute(select(CustomerGroup.segment, CustomerGroup.owner,
                                        CustomerGroup.chat_id)
                                 .where(CustomerGroup.status == LIVE,
                                        CustomerGroup.segment.is_not(None))
                                 .order_by(CustomerGroup.id))
    for segment, owner, chat_id in rows:
        if owner:
            found[segment][owner].append(chat_id)
    return found


async def preview(session: AsyncSession, calendar: CalendarFlows, start: date, days: int,
                  segment: str | None = None,
                  campaigns: dict[str, Campaign] | None = None) -> list[str]:
    groups = await groups_by_segment(session)
    names = {chat_id: name for chat_id, name in await session.execute(
        select(CustomerGroup.chat_id, CustomerGroup.name))}
    upcoming = {column: [dict(title=i.title, body=i.body, link=i.link or "")
                         for i in await content.queued(session, column, limit=500)]
                for column in calendar.columns}
    taken: dict[str, dict[str, str] | None] = {}

    def item(post: Post, name: str) -> dict[str, str] | None:
        key = post.key(name)
        if key not in taken:
            queue = upcoming.get(post.column or "", [])
            taken[key] = queue.pop(0) if queue else None
        return taken[key]

    lines = [f"calendar {start:%Y-%m-%d} to {start + timedelta(days=days - 1):%Y-%m-%d} "
             f"(Asia/Shanghai), daily cap policy: {calendar.daily_cap_policy}"]
    for n in range(days):
        day = start + timedelta(days=n)
        lines.append(f"{day:%Y-%m-%d} 周{WEEKDAYS[day.weekday()]}")
        own = {t.chat_id: t.post
               for t in await onboarding.today(session, campaigns or {}, day, names)}
        for name in calendar.segments:
            if segment is None or name == segment:
                lines += _segment_lines(calendar, name, day, groups.get(name, {}), item, own)
    return lines


def _segment_lines(calendar: CalendarFlows, name: str, day: date,
                   owners: dict[str, list[str]], item: Callable[[Post, str], Item],
                   own: dict[str, Post]) -> list[str]:
    count = sum(len(chats) for chats in owners.values())
    lines = [f"  {name}: {count} customer group(s), {len(owners)} owner(s)"]
    mine = {c: own[c] for chats in owners.values() for c in chats if c in own}
    deliveries = plan_day(calendar, name, day, owners, mine)
    if not deliveries:
        lines.append("    nothing to post")
    for delivery in deliveries:
        lines.append(f"    {_line(delivery, calendar, lambda post: item(post, name))}")
    return lines


def _line(delivery: Delivery, calendar: CalendarFlows, item: Callable[[Post], Item]) -> str:
    where = f"{TRANSPORTS[delivery.transport]} {delivery.target}"
    if delivery.label:
        where += f" ({delivery.label}, onboarding)"
    elif delivery.chat_ids:
        where += f" ({len(delivery.chat_ids)} group(s))"
    texts = []
    for post in delivery.posts:
        text = render(post, calendar.columns, item, calendar.slot_template)
        label = calendar.columns.get(post.column or "", "")
        texts.append(_short(text) if text is not None else f"({label}: queue empty, skipped)")
    return f"{delivery.at:%H:%M} {where}: " + " | ".join(texts)


def _short(text: str) -> str:
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= SHOWN else first[:SHOWN - 1] + "…"
