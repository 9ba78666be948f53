"""Who joined each customer group on a given day (Asia/Shanghai), for the newcomer Q&A and the
group's welcome round: `sopbot groups newcomers`."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.config import SHANGHAI
from app.groups.models import CustomerGroup, GroupMember
from app.groups.service import CUSTOMER
from app.members.models import Member


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), SHANGHAI)
    return start, start + timedelta(days=1)


Joined = list[tuple[CustomerGroup, list[tuple[GroupMember, Member | None]]]]


async def newcomers(session: AsyncSession, day: date, segment: str | None = None) -> Joined:
    """Per group (oldest first), the customers who joined on `day` and are still in it."""
    return await joined_between(session, *day_bounds(day), segment)


async def joined_between(session: AsyncSession, start: datetime, end: datetime,
                         segment: str | None = None) -> Joined:
    """Per group (oldest first), the customers who joined in [start, end) and are still in
    it (one query, on group_member's joined_at index)."""
    query = (select(CustomerGroup, GroupMember, Member)
             .join(GroupMember, GroupMember.chat_id == CustomerGroup.chat_id)
             .outerjoin(Member, Member.external_userid == GroupMember.userid)
             .where(GroupMember.type == CUSTOMER, GroupMember.left_at.is_(None),
                    GroupMember.joined_at >= start, GroupMember.joined_at < end)
             .order_by(CustomerGroup.id, GroupMember.joined_at, GroupMember.id))
    if segment is not None:
        query = query.where(CustomerGroup.segment == segment)
    found: dict[int, tuple[CustomerGroup, list[tuple[GroupMember, Member | None]]]] = {}
    for group, joined, member in await session.execute(query):
        found.setdefault(group.id, (group, []))[1].append((joined, member))
    return list(found.values())


def lines(found: Joined, day: date, identities: dict[str, str]) -> list[str]:
    if not found:
        return [f"no newcomers on {day:%Y-%m-%d}"]
    out = []
    for group, joined in found:
        out.append(f"{group.name or group.chat_id} ({group.segment or '-'}) {group.chat_id}: "
                   f"{len(joined)} newcomer(s) on {day:%Y-%m-%d}")
        for row, member in joined:
            who = (f"{identities.get(member.identity_type or '', '-')} {member.region or '-'}"
                   if member else "not a member of the funnel")
            out.append(f"  {row.joined_at.astimezone(SHANGHAI):%H:%M} {row.userid} {who}")
    return out
