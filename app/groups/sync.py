"""`sopbot groups sync`: read the corp's customer groups, give each its segment (by name), and
make or update every segment's 加入群聊 code (one join way per segment, see pools.py).

Groups can only be created in the WeCom client, so a segment's first group is made by a staff
member, named with the segment's room_name (e.g. 实体店北方交流群1); after that WeCom creates
the next ones itself (auto_create_room) and serve keeps the pool current from group events.
Like `codes sync`, each answer from WeCom is committed at once, and one segment's failure does
not stop the others.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database, utcnow
from app.groups import pools, service
from app.groups.models import LIVE, CustomerGroup, GroupPool
from app.logs import get_logger
from app.members.models import Member
from app.routing.flows import RoutingFlows, Segment
from app.wecom.api_contact import (
    AddJoinWay,
    GetGroupChat,
    GetJoinWay,
    ListGroupChats,
    OwnerFilter,
)
from app.wecom.client import WeComClient
from app.wecom.errors import ApiError, WeComError

log = get_logger("sopbot.groups.sync")
TOO_MANY_PEOPLE = 81017  # groupchat/list without owner_filter over >1000 people in scope
OWNERS_PER_PAGE = 100
REMARK_MAX = 30


@dataclass(frozen=True)
class SyncReport:
    groups_read: int
    unassigned: list[str]  # names of groups matching no segment
    lines: list[str]
    failed: int


async def sync_groups(db: Database, wecom: WeComClient, routing: RoutingFlows,
                      staff: list[str], *, full: bool = False) -> SyncReport:
    """Read the groups sopbot does not know yet (all of them with `full`), then each pool."""
    listed = await list_chat_ids(wecom, staff)
    read = 0
    for chat_id in listed if full else await _unsynced(db, listed):
        detail = (await wecom.call(GetGroupChat(chat_id=chat_id))).group_chat
        if detail is None:
            continue
        async with db.unit_of_work() as session:
            group = await service.apply_snapshot(session, detail, utcnow(), routing)
            service.reached_ideal_size(group, routing, utcnow())
        read += 1
    lines, failed = [], 0
    for name, segment in routing.segments.items():
        try:
            lines.append(f"{name:<16} {await ensure_pool(db, wecom, name, segment)}")
        except WeComError as exc:
            failed += 1
            lines.append(f"{name:<16} failed: {exc}")
            log.warning("group_pool_sync_failed", segment=name, error=str(exc))
    return SyncReport(read, await _unassigned(db), lines, failed)


async def list_chat_ids(wecom: WeComClient, staff: list[str]) -> list[str]:
    """Every customer group id; by owner when WeCom refuses the unfiltered list (81017)."""
    try:
        return await _pages(wecom, None)
    except ApiError as exc:
        if exc.errcode != TOO_MANY_PEOPLE or not staff:
            raise
    ids: list[str] = []
    for start in range(0, len(staff), OWNERS_PER_PAGE):
        ids += await _pages(wecom, OwnerFilter(userid_list=staff[start:start + OWNERS_PER_PAGE]))
    return ids


async def _pages(wecom: WeComClient, owners: OwnerFilter | None) -> list[str]:
    ids, cursor = [], None
    while True:
        page = await wecom.call(ListGroupChats(owner_filter=owners, cursor=cursor))
        ids += [chat.chat_id for chat in page.group_chat_list]
        if not page.next_cursor:
            return ids
        cursor = page.next_cursor


async def _unsynced(db: Database, listed: list[str]) -> list[str]:
    async with db.reader() as session:
        synced = set(await session.scalars(select(CustomerGroup.chat_id).where(
            CustomerGroup.synced_at.is_not(None))))
    return [chat_id for chat_id in listed if chat_id not in synced]


async def ensure_pool(db: Database, wecom: WeComClient, name: str, segment: Segment) -> str:
    """Make the segment's join way, or update its groups and room name; what was done."""
    async with db.reader() as session:
        pool = await pools.pool_of(session, name)
        wanted = await pools.wanted_chats(session, name)
        next_number = await _next_room_number(session, name, segment.room_name)
    if not wanted:
        return (f"no group yet: create a customer group named {segment.room_name}1 in WeCom "
                f"(owner: a staff member the app can see), then run `sopbot groups sync` again")
    if pool is None:
        return await _create_pool(db, wecom, name, segment, wanted, next_number)
    if wanted == pools.chat_ids(pool) and pool.room_name == segment.room_name:
        return f"unchanged {pool.qr_code} ({len(wanted)} group(s))"
    return await _update_pool(db, wecom, pool.id, segment, wanted)


async def _create_pool(db: Database, wecom: WeComClient, name: str, segment: Segment,
                       wanted: list[str], next_number: int) -> str:
    config_id = (await wecom.call(AddJoinWay(
        scene=pools.QR_SCENE, remark=f"sopbot {name}"[:REMARK_MAX], auto_create_room=1,
        room_base_name=segment.room_name, room_base_id=next_number, chat_id_list=wanted,
        state=name))).config_id
    # Logged before storing: should the row not land, the log still holds the config_id.
    log.info("join_way_created", segment=name, config_id=config_id)
    way = (await wecom.call(GetJoinWay(config_id=config_id))).join_way
    qr_code = way.qr_code if way and way.qr_code else ""
    async with db.unit_of_work() as session:
        session.add(GroupPool(segment=name, config_id=config_id, qr_code=qr_code,
                              chat_ids=json.dumps(wanted), room_name=segment.room_name,
                              version=1, updated_at=utcnow()))
    return f"created {qr_code} ({len(wanted)} group(s))"


async def _update_pool(db: Database, wecom: WeComClient, pool_id: int, segment: Segment,
                       wanted: list[str]) -> str:
    async with db.reader() as session:
        pool = await session.get(GroupPool, pool_id)
        assert pool is not None, f"group_pool {pool_id} vanished during sync"
    pool.room_name = segment.room_name
    # WeCom first, then the row: should serve rotate the pool in between, its update's settle
    # hook sees the list it sent differ from the row and sends the row's (pools.py).
    await wecom.call(pools.update_call(pool, wanted))
    async with db.unit_of_work() as session:
        row = await session.get(GroupPool, pool_id, with_for_update=True)
        assert row is not None, f"group_pool {pool_id} vanished during sync"
        row.chat_ids, row.room_name = json.dumps(wanted), segment.room_name
        row.version, row.updated_at = row.version + 1, utcnow()
    return f"updated {pool.qr_code} ({len(wanted)} group(s))"


async def _next_room_number(session: AsyncSession, segment: str, room_name: str) -> int:
    """One past the highest number of the segment's groups named room_name + number."""
    names = await session.scalars(select(CustomerGroup.name).where(
        CustomerGroup.segment == segment))
    pattern = re.compile(re.escape(room_name) + r"(\d+)$")
    numbers = [int(m.group(1)) for name in names if (m := pattern.match(name))]
    return max(numbers, default=0) + 1


async def _unassigned(db: Database) -> list[str]:
    async with db.reader() as session:
        return list(await session.scalars(select(CustomerGroup.name).where(
            CustomerGroup.segment.is_(None), CustomerGroup.status == LIVE)
            .order_by(CustomerGroup.name)))


async def pool_lines(db: Database, routing: RoutingFlows) -> list[str]:
    """`sopbot groups list`: per segment, its code and its groups with size against ideal."""
    lines = []
    async with db.reader() as session:
        flagged = {chat_id: n for chat_id, n in await session.execute(  # flagged members
            select(Member.group_chat_id, func.count()).where(Member.flag.is_not(None))
            .group_by(Member.group_chat_id))}
        for name, segment in routing.segments.items():
            pool = await pools.pool_of(session, name)
            listed = set(pools.chat_ids(pool)) if pool else set()
            lines.append(f"{name} ({segment.label}), ideal {segment.ideal_size}: "
                         + (pool.qr_code if pool else "no join way; run `sopbot groups sync`"))
            groups = await session.scalars(select(CustomerGroup).where(
                CustomerGroup.segment == name).order_by(CustomerGroup.id))
            for group in groups:
                lines.append(f"  {'*' if group.chat_id in listed else ' '} {group.name:<20} "
                             f"{group.member_count:>4}/{segment.ideal_size} {group.status}"
                             f"{' filled' if group.filled_at else ''} {group.chat_id}"
                             + (f" flagged {flagged[group.chat_id]}"
                                if group.chat_id in flagged else ""))
    return lines or ["no segments declared"]
