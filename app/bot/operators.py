"""What the operator commands do, apart from parsing and answering (handlers/commands.py):
funnel figures, the review queue, announcements as mass-send tasks within WeCom's one mass
message per group a day (held for the operator's choice when it is taken). Functions flush
only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar import announcements
from app.calendar.daycap import taken_today
from app.calendar.flows import CalendarFlows
from app.calendar.models import Announcement, GroupDay
from app.calendar.onboarding import Campaign
from app.calendar.planner import SHANGHAI, at_time
from app.calendar.talks import TalkFlows
from app.flows import Flows
from app.funnel.labels import value_labels
from app.funnel.report import ReportError, format_report, gather, parse_by, parse_since
from app.groups.models import LIVE, CustomerGroup
from app.logs import mask_phones
from app.outbox import store as outbox
from app.verify.models import PENDING, Verification
from app.wecom.api import SendMessage, Text
from app.wecom.api_outreach import AddMsgTemplate

ANNOUNCE_KIND = "announcement"
MAX_CHATS_PER_TASK = 2000  # add_msg_template's chat_id_list


async def stats(session: AsyncSession, args: list[str], now: datetime,
                flows: Flows | None = None) -> str:
    """/stats [dimension] [period]: the funnel report, its channels, slots and segments by
    their Chinese labels as in `sopbot funnel`; ReportError for bad arguments."""
    by = next((a for a in args if not a[:1].isdigit()), None)
    since = next((a for a in args if a[:1].isdigit()), "7d")
    if len(args) > 2:
        raise ReportError("too many arguments")
    parse_by(by)
    since_at = now - parse_since(since)
    labels = value_labels(flows, by) if flows is not None else None
    return format_report(await gather(session, by, since_at), by, since, since_at, labels)


@dataclass(frozen=True)
class PendingReview:
    id: int
    phone: str  # masked
    identity_type: str
    region: str
    checks: tuple[dict[str, object], ...] = ()  # why it waits (app/verify/checks.py)


async def pending_reviews(session: AsyncSession,
                          limit: int = 10) -> tuple[int, list[PendingReview]]:
    count = await session.scalar(select(func.count()).where(Verification.status == PENDING))
    rows = await session.scalars(select(Verification).where(Verification.status == PENDING)
                                 .order_by(Verification.id).limit(limit))
    return count or 0, [PendingReview(r.id, mask_phones(r.phone), r.identity_type, r.region,
                                      tuple(r.checks or ())) for r in rows]


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
                       status=announcements.HELD if taken else announcements.SENT,
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
    key, day = f"announce:{row.id}", now.astimezone(SHANGHAI).date()
    for owner, chat_ids in sorted(_by_owner(groups).items()):
        for start in range(0, len(chat_ids), MAX_CHATS_PER_TASK):
            call = AddMsgTemplate(chat_type="group", sender=owner, text=Text(content=row.text),
                                  chat_id_list=chat_ids[start:start + MAX_CHATS_PER_TASK])
            await outbox.enqueue(session, f"{key}:{owner}:{start}", call, kind=ANNOUNCE_KIND,
                                 deadline=at_time(day + timedelta(days=1), "00:00"))
    session.add_all(GroupDay(chat_id=g.chat_id, day=day.isoformat(), post_key=key)
                    for g in groups)


def _by_owner(groups: list[CustomerGroup]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for group in groups:
        found.setdefault(group.owner or "", []).append(group.chat_id)
    return found


async def held(session: AsyncSession, announcement_id: int) -> Announcement | None:
    """A held announcement, locked for the choice (a second choice finds it decided)."""
    return await session.scalar(select(Announcement).where(
        Announcement.id == announcement_id, Announcement.status == announcements.HELD)
        .with_for_update())


async def schedule(session: AsyncSession, calendar: CalendarFlows, row: Announcement,
                   now: datetime, talks: TalkFlows | None = None) -> Announced:
    """The held announcement joins tomorrow's mass message of its groups (the calendar posts
    it, at the time of their task)."""
    groups = await _target_groups(session, row.target, announcements.chat_ids(row))
    tomorrow = now.astimezone(SHANGHAI).date() + timedelta(days=1)
    segment = groups[0].segment if groups else None
    row.status = announcements.SCHEDULED
    row.at = announcements.task_time(calendar, segment, tomorrow, now, talks)
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
    row.status, row.at = announcements.REMINDED, now
    await session.flush()
    return Announced(row, len(groups), len({g.owner for g in groups}), [])
