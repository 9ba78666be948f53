"""/announce in the calendar: an operator's announcement goes out at once as a mass task per
group owner, or, when one of its groups has had (or has planned) its one mass message of
today, is held for the operator's choice: tomorrow's mass message of its groups, or reminders
to their owners to post by hand. Functions flush only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar import announcements
from app.calendar.announcements import HELD, REMINDED, SCHEDULED, SENT, task_time
from app.calendar.daycap import taken_today
from app.calendar.flows import CalendarFlows
from app.calendar.models import Announcement
from app.calendar.onboarding import Campaign
from app.calendar.posting import end_of_day, mark_taken
from app.calendar.talks import TalkFlows
from app.engine.config import SHANGHAI
from app.engine.outbox import store as outbox
from app.engine.wecom.api import SendMessage, Text
from app.engine.wecom.api_outreach import AddMsgTemplate
from app.groups.models import LIVE, CustomerGroup

ANNOUNCE_KIND = "announcement"
MAX_CHATS_PER_TASK = 2000  # add_msg_template's chat_id_list


@dataclass(frozen=True)
class Announced:
    """What became of an /announce: its row (None: no groups), and the names of the groups
    whose mass message of today was taken (the reason it is held)."""

    row: Announcement | None
    groups: int
    owners: int
    taken: list[str]


async def announce(session: AsyncSession, calendar: CalendarFlows,
                   campaigns: dict[str, Campaign], target: str, text: str, operator: str,
                   now: datetime, talks: TalkFlows | None = None) -> Announced:
    """A mass-send task per group owner for the live groups of a segment (or one group, by
    name or chat id), each owner confirming in the client (DESIGN.md §1). Only when none of
    them has had, or has planned, its one mass message of today: else nothing is sent and the
    announcement is held for the operator's choice (`schedule` or `remind`)."""
    groups = await _target_groups(session, target)
    if not groups:
        return Announced(None, 0, 0, [])
    taken = await taken_today(session, calendar, campaigns, groups, now, talks)
    row = Announcement(target=target[:128], text=text, operator=operator[:64],
                       chat_ids=",".join(g.chat_id for g in groups), created_at=now,
                       status=HELD if taken else SENT,
                       at=None if taken else now)
    session.add(row)
    await session.flush()
    owners = len({g.owner for g in groups})
    if not taken:
        await _send(session, row, groups, now)
    return Announced(row, len(groups), owners, [g.name or g.chat_id for g in groups
                                                if g.chat_id in taken])


async def _target_groups(session: AsyncSession, target: str,
                         chat_ids: list[str] | None = None) -> list[CustomerGroup]:
    """Live groups with an owner: of the target (segment, group name or chat id) or the ids."""
    where = CustomerGroup.chat_id.in_(chat_ids) if chat_ids is not None else or_(
        CustomerGroup.segment == target, CustomerGroup.name == target,
        CustomerGroup.chat_id == target)
    return list(await session.scalars(select(CustomerGroup).where(
        CustomerGroup.status == LIVE, CustomerGroup.owner.is_not(None), where)
        .order_by(CustomerGroup.id)))


async def _send(session: AsyncSession, row: Announcement, groups: list[CustomerGroup],
                now: datetime) -> None:
    """The tasks, and the groups' mass message of today marked taken (the calendar then
    leaves them out today). A task not sent today would take tomorrow's: it expires."""
    key = f"announce:{row.id}"
    for owner, chat_ids in sorted(_by_owner(groups).items()):
        for start in range(0, len(chat_ids), MAX_CHATS_PER_TASK):
            call = AddMsgTemplate(chat_type="group", sender=owner, text=Text(content=row.text),
                                  chat_id_list=chat_ids[start:start + MAX_CHATS_PER_TASK])
            await outbox.enqueue(session, f"{key}:{owner}:{start}", call, kind=ANNOUNCE_KIND,
                                 deadline=end_of_day(now))
    mark_taken(session, [g.chat_id for g in groups], now, key)


def _by_owner(groups: list[CustomerGroup]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for group in groups:
        found.setdefault(group.owner, []).append(group.chat_id)
    return found


async def held(session: AsyncSession, announcement_id: int) -> Announcement | None:
    """A held announcement, locked for the choice (a second choice finds it decided)."""
    return await session.scalar(select(Announcement).where(
        Announcement.id == announcement_id, Announcement.status == HELD)
        .with_for_update())


async def schedule(session: AsyncSession, calendar: CalendarFlows, row: Announcement,
                   now: datetime, talks: TalkFlows | None = None) -> Announced:
    """The held announcement joins tomorrow's mass message of its groups (the calendar posts
    it, at the time of their task)."""
    groups = await _target_groups(session, row.target, announcements.chat_ids(row))
    tomorrow = now.astimezone(SHANGHAI).date() + timedelta(days=1)
    segment = groups[0].segment if groups else None
    row.status = SCHEDULED
    row.at = task_time(calendar, segment, tomorrow, now, talks)
    await session.flush()
    return Announced(row, len(groups), len({g.owner for g in groups}), [])


async def remind(session: AsyncSession, row: Announcement, reminder: str, agent_id: int,
                 now: datetime) -> Announced:
    """The held announcement goes to its groups' owners as app messages, to post by hand (a
    member's message is not a mass message: no daily cap)."""
    groups = await _target_groups(session, row.target, announcements.chat_ids(row))
    names = {g.chat_id: g.name or g.chat_id for g in groups}
    for owner, chat_ids in sorted(_by_owner(groups).items()):
        text = reminder.format(groups="、".join(names[c] for c in chat_ids), text=row.text)
        await outbox.enqueue(session, f"announce:{row.id}:remind:{owner}", SendMessage(
            agentid=agent_id, touser=owner, msgtype="text", text=Text(content=text)),
            kind=ANNOUNCE_KIND)
    row.status, row.at = REMINDED, now
    await session.flush()
    return Announced(row, len(groups), len({g.owner for g in groups}), [])
