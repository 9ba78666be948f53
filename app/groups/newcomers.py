"""Who joined each customer group on a given day (Asia/Shanghai), for the newcomer Q&A and the
group's welcome round: `sopbot groups newcomers`, the owner's daily newcomer list. When the chat
archive is read here, the list says who has introduced themselves in the group and who has not
yet (app/archive/newcomers.py); without it, nothing is said about introductions."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.activity import archive_in_use
from app.archive.newcomers import introduced
from app.engine.config import SHANGHAI
from app.groups.models import CustomerGroup, GroupMember
from app.groups.service import CUSTOMER
from app.members.models import Member


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), SHANGHAI)
    return start, start + timedelta(days=1)


Joined = list[tuple[CustomerGroup, list[tuple[GroupMember, Member | None]]]]
# (chat_id, userid) of those who introduced themselves; None: no archive, nobody knows.
Introduced = set[tuple[str, str]] | None


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


async def intro_status(session: AsyncSession, found: Joined) -> Introduced:
    """Who of the newcomers found introduced themselves; None when no archive is read."""
    if not found or not await archive_in_use(session):
        return None
    return await introduced(session, [group.chat_id for group, _ in found])


async def newcomer_lines(session: AsyncSession, day: date, segment: str | None,
                         identities: dict[str, str]) -> list[str]:
    """The owner's list for `day`: `sopbot groups newcomers`."""
    found = await newcomers(session, day, segment)
    return lines(found, day, identities, await intro_status(session, found))


def lines(found: Joined, day: date, identities: dict[str, str],
          intros: Introduced = None) -> list[str]:
    if not found:
        return [f"no newcomers on {day:%Y-%m-%d}"]
    out = []
    for group, joined in found:
        silent = ([row.userid for row, _ in joined if (group.chat_id, row.userid) not in intros]
                  if intros is not None else [])
        out.append(f"{group.name or group.chat_id} ({group.segment or '-'}) {group.chat_id}: "
                   f"{len(joined)} newcomer(s) on {day:%Y-%m-%d}"
                   + (f", {len(silent)} not introduced yet" if intros is not None else ""))
        for row, member in joined:
            who = (f"{identities.get(member.identity_type or '', '-')} {member.region or '-'}"
                   if member else "not a member of the funnel")
            said = ("" if intros is None else " · not introduced yet" if row.userid in silent
                    else " · introduced")
            out.append(f"  {row.joined_at.astimezone(SHANGHAI):%H:%M} {row.userid} {who}{said}")
    return out
