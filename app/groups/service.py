"""Customer groups and who is in them, as WeCom's events and groupchat/get tell it. Functions
flush, never commit; handlers and the outbox's settle hooks call them in their unit of work.

Events carry deltas (who joined, who left) and member-list versions: when an event's LastMemVer
is not the version sopbot holds, an event was missed (or came out of order), so the group is read
again with groupchat/get. That read goes through the outbox, as every call does: handlers never
call WeCom, and the outbox brings leases, retries and rate limits; its settle hook applies the
answer (`apply_snapshot`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.db import insert_for
from app.engine.logs import get_logger
from app.engine.outbox import store as outbox
from app.engine.wecom.api_contact import GetGroupChat, GroupChatInfo
from app.groups.models import DISMISSED, LIVE, CustomerGroup, GroupMember
from app.routing.flows import RoutingFlows

log = get_logger("sopbot.groups")
GROUP_SYNC_KIND = "group_sync"
# groupchat/get right after an event may not show it yet (wecom-reference §4.5): a read never
# removes someone who joined within this time before it was asked for.
READ_LAG = timedelta(seconds=60)
STAFF, CUSTOMER = 1, 2


def member_type(userid: str) -> int:
    """A customer's external_userid starts with wm or wo (wecom-reference §4.4); anything else
    in a member list is a staff userid. groupchat/get gives the type exactly."""
    return CUSTOMER if userid.startswith(("wm", "wo")) else STAFF


async def by_chat_id(session: AsyncSession, chat_id: str) -> CustomerGroup | None:
    return await session.scalar(select(CustomerGroup).where(CustomerGroup.chat_id == chat_id))


async def group_of(session: AsyncSession, chat_id: str, now: datetime, *,
                   read_new: bool = True) -> CustomerGroup:
    """The group's row, locked until the unit of work ends, so events of one group are applied
    one at a time across replicas; a group not seen before gets a row and (`read_new`) is read
    from WeCom."""
    created = await session.execute(
        insert_for(session, CustomerGroup).values(chat_id=chat_id, created_at=now, updated_at=now,
                                               name="", owner="", member_count=0, status=LIVE,
                                               filled_on_arrival=False)
        .on_conflict_do_nothing(index_elements=["chat_id"]).returning(CustomerGroup.id))
    if created.first() is not None and read_new:
        await request_sync(session, chat_id, "new")
    group = await session.scalar(select(CustomerGroup).where(CustomerGroup.chat_id == chat_id)
                                 .with_for_update().execution_options(populate_existing=True))
    assert group is not None
    return group



async def request_sync(session: AsyncSession, chat_id: str, reason: str) -> bool:
    """Queue a groupchat/get for the group; one per (group, reason): a retried handler or a
    replayed event does not read it twice."""
    return await outbox.enqueue(session, f"groupsync:{chat_id}:{reason}",
                                GetGroupChat(chat_id=chat_id), kind=GROUP_SYNC_KIND)


async def follow_version(session: AsyncSession, group: CustomerGroup, last: str,
                         current: str) -> None:
    """Take the event's member-list version; read the group again if one was missed."""
    if group.member_version is not None and last and last != group.member_version:
        log.info("group_event_missed", chat_id=group.chat_id, held=group.member_version,
                 last=last)
        await request_sync(session, group.chat_id, f"ver:{current or last}")
    if current:
        group.member_version = current


async def members_joined(session: AsyncSession, group: CustomerGroup, ids: Iterable[str],
                         now: datetime, scene: int | None = None,
                         state: str | None = None) -> None:
    ids = list(ids)
    await _add_rows(session, [dict(chat_id=group.chat_id, userid=userid, type=member_type(userid),
                                   joined_at=now, join_scene=scene, state=state)
                              for userid in ids])
    for row in (await _rows(session, group.chat_id, ids)).values():
        if row.left_at is not None:  # back again
            row.left_at, row.quit_scene, row.joined_at, row.join_scene = None, None, now, scene
    await _recount(session, group, now)


async def _add_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Member rows that are not there yet (a snapshot and an event may bring the same one)."""
    if rows:
        await session.execute(insert_for(session, GroupMember).on_conflict_do_nothing(
            index_elements=["chat_id", "userid"]), rows)


async def members_left(session: AsyncSession, group: CustomerGroup, ids: Iterable[str],
                       now: datetime, scene: int | None = None) -> None:
    for row in (await _rows(session, group.chat_id, ids)).values():
        if row.left_at is None:
            row.left_at, row.quit_scene = now, scene
    await _recount(session, group, now)


async def current_group(session: AsyncSession, userid: str) -> str | None:
    """A live group the person is still in (the one joined last), or None."""
    return await session.scalar(
        select(GroupMember.chat_id)
        .join(CustomerGroup, CustomerGroup.chat_id == GroupMember.chat_id)
        .where(GroupMember.userid == userid, GroupMember.left_at.is_(None),
               CustomerGroup.status == LIVE)
        .order_by(GroupMember.joined_at.desc(), GroupMember.id.desc()).limit(1))


async def _rows(session: AsyncSession, chat_id: str,
                ids: Iterable[str]) -> dict[str, GroupMember]:
    rows = await session.scalars(select(GroupMember).where(
        GroupMember.chat_id == chat_id, GroupMember.userid.in_(list(ids))))
    return {row.userid: row for row in rows}


async def _recount(session: AsyncSession, group: CustomerGroup, now: datetime) -> None:
    await session.flush()
    group.member_count = await session.scalar(select(func.count()).where(
        GroupMember.chat_id == group.chat_id, GroupMember.left_at.is_(None))) or 0
    group.updated_at = now


def with_room(segment: str) -> Select[str]:
    """The segment's live groups that have not reached their ideal size, oldest first: the
    ones new members should be seated in."""
    return (select(CustomerGroup.chat_id)
            .where(CustomerGroup.segment == segment, CustomerGroup.status == LIVE,
                   CustomerGroup.filled_at.is_(None))
            .order_by(CustomerGroup.id))


async def next_room_number(session: AsyncSession, segment: str, room_name: str) -> int:
    """One past the highest number of the segment's groups named room_name + number."""
    names = await session.scalars(select(CustomerGroup.name).where(
        CustomerGroup.segment == segment))
    pattern = re.compile(re.escape(room_name) + r"(\d+)$")
    numbers = [int(m.group(1)) for name in names if (m := pattern.match(name))]
    return max(numbers, default=0) + 1


def segment_by_name(routing: RoutingFlows, name: str) -> str | None:
    """The segment whose room_name the group's name starts with (the longest such name: WeCom
    names auto-created groups room_name + number, and operators follow the same pattern)."""
    found = [(len(s.room_name), key) for key, s in routing.segments.items()
             if name.startswith(s.room_name)]
    return max(found)[1] if found else None


async def apply_snapshot(session: AsyncSession, info: GroupChatInfo, now: datetime,
                         routing: RoutingFlows, asked_at: datetime) -> CustomerGroup:
    """Bring the group's row up to what groupchat/get said: name, owner, segment (once),
    members, whether it has filled. The answer may be older than events handled since the read
    was queued (`asked_at`), and WeCom's may lag its events: a member who joined or left after
    (or just before) that keeps what the event said, and the member-list version is taken only
    when no event came in between. A dismissed group stays dismissed."""
    group = await group_of(session, info.chat_id, now, read_new=False)
    first_read = group.synced_at is None
    group.name, group.owner, group.notice = info.name, info.owner, info.notice
    if first_read and info.create_time:  # when WeCom made it, not when sopbot first saw it
        group.created_at = datetime.fromtimestamp(info.create_time, now.tzinfo)
    if group.segment is None:
        group.segment = segment_by_name(routing, info.name)
    present = {m.userid: m for m in info.member_list}
    await _add_rows(session, [dict(chat_id=info.chat_id, userid=m.userid, type=m.type,
                                   joined_at=_joined_at(m.join_time, now), state=m.state or None)
                              for m in present.values()])
    for row in await session.scalars(select(GroupMember).where(
            GroupMember.chat_id == info.chat_id)):
        if row.userid in present:
            row.type = present[row.userid].type
            said = present[row.userid].group_nickname or present[row.userid].name
            row.nickname = said[:64] if said else row.nickname
            if row.left_at is not None and row.left_at < asked_at - READ_LAG:
                row.left_at = None  # back since; one who left just before may still show
        elif row.left_at is None and row.joined_at < asked_at - READ_LAG:
            row.left_at = now
    if group.updated_at <= asked_at:
        group.member_version = info.member_version  # None when WeCom does not give one
    group.synced_at = now
    await _recount(session, group, now)
    if reached_ideal_size(group, routing, now) and first_read:
        group.filled_on_arrival = True  # full before sopbot knew it: nothing to onboard
    return group


def _joined_at(join_time: int | None, now: datetime) -> datetime:
    return datetime.fromtimestamp(join_time, now.tzinfo) if join_time else now


async def dismissed(session: AsyncSession, group: CustomerGroup, now: datetime) -> None:
    group.status, group.updated_at = DISMISSED, now
    log.info("group_dismissed", chat_id=group.chat_id, segment=group.segment)


def reached_ideal_size(group: CustomerGroup, routing: RoutingFlows, now: datetime) -> bool:
    """True once, when the group first reaches its segment's ideal size (it leaves the pool
    for good then, even if members leave later: its onboarding has begun)."""
    segment = routing.segments.get(group.segment or "")
    if segment is None or group.filled_at is not None or group.member_count < segment.ideal_size:
        return False
    group.filled_at = now
    log.info("group_filled", chat_id=group.chat_id, segment=group.segment,
             members=group.member_count)
    return True
