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
from dataclasses import dataclass

from sqlalchemy import func, select

from app.engine.db import Database, utcnow
from app.engine.logs import get_logger
from app.engine.wecom.api_contact import (
    AddJoinWay,
    GetGroupChat,
    GetJoinWay,
    JoinWayInfo,
    ListGroupChats,
    OwnerFilter,
)
from app.engine.wecom.client import WeComClient
from app.engine.wecom.errors import ApiError, WeComError
from app.groups import pools, service
from app.groups.models import LIVE, CustomerGroup, GroupPool
from app.members.models import Member
from app.routing.flows import RoutingFlows, Segment

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
    read, lines, failed = 0, [], 0
    for chat_id in listed if full else await _unsynced(db, listed):
        try:
            read += await _read_group(db, wecom, routing, chat_id)
        except WeComError as exc:  # e.g. its owner is outside the app's visible scope
            failed += 1
            lines.append(f"group {chat_id} failed: {exc}")
            log.warning("group_read_failed", chat_id=chat_id, error=str(exc))
    for name, segment in routing.segments.items():
        try:
            lines.append(f"{name:<16} {await ensure_pool(db, wecom, name, segment)}")
        except WeComError as exc:
            failed += 1
            lines.append(f"{name:<16} failed: {exc}")
            log.warning("group_pool_sync_failed", segment=name, error=str(exc))
    return SyncReport(read, await _unassigned(db), lines, failed)


async def _read_group(db: Database, wecom: WeComClient, routing: RoutingFlows,
                      chat_id: str) -> int:
    detail = (await wecom.call(GetGroupChat(chat_id=chat_id))).group_chat
    if detail is None:
        return 0
    async with db.unit_of_work() as session:
        now = utcnow()
        await service.apply_snapshot(session, detail, now, routing, asked_at=now)
    return 1


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
    """Make the segment's join way, or bring it to its groups and room name (compared with what
    WeCom holds, so a failed update is repaired); what was done."""
    async with db.reader() as session:
        pool = await pools.pool_of(session, name)
        wanted = await pools.wanted_chats(session, name)
        next_number = await service.next_room_number(session, name, segment.room_name)
    if not wanted:
        return (f"no group yet: create a customer group named {segment.room_name}1 in WeCom "
                f"(owner: a staff member the app can see), then run `sopbot groups sync` again")
    if pool is None:
        pool = await _create_pool(db, wecom, name, segment, wanted, next_number)
        return f"created {await _qr_code(db, wecom, pool)} ({len(wanted)} group(s))"
    way = (await wecom.call(GetJoinWay(config_id=pool.config_id))).join_way
    qr_code = await _qr_code(db, wecom, pool, way)
    if way is not None and way.chat_id_list == wanted and way.room_base_name == segment.room_name:
        await _save_pool(db, pool.id, wanted, segment.room_name, bump=False)
        return f"unchanged {qr_code} ({len(wanted)} group(s))"
    pool.room_name = segment.room_name
    # WeCom first, then the row: should serve rotate the pool in between, the settle hook of
    # its update sees the list differ from the row's and sends the row's (pools.py).
    await wecom.call(pools.update_call(pool, wanted))
    await _save_pool(db, pool.id, wanted, segment.room_name, bump=True)
    return f"updated {qr_code} ({len(wanted)} group(s))"


async def _create_pool(db: Database, wecom: WeComClient, name: str, segment: Segment,
                       wanted: list[str], next_number: int) -> GroupPool:
    config_id = (await wecom.call(AddJoinWay(
        scene=pools.QR_SCENE, remark=f"sopbot {name}"[:REMARK_MAX], auto_create_room=1,
        room_base_name=segment.room_name, room_base_id=next_number, chat_id_list=wanted,
        state=name))).config_id
    # Stored at once (its QR code comes next): should that fail, the next sync finds the row
    # and asks for the code again instead of making a second join way.
    log.info("join_way_created", segment=name, config_id=config_id)
    pool = GroupPool(segment=name, config_id=config_id, qr_code="", chat_ids=json.dumps(wanted),
                     room_name=segment.room_name, version=1, stale=False, updated_at=utcnow())
    async with db.unit_of_work() as session:
        session.add(pool)
    return pool


async def _qr_code(db: Database, wecom: WeComClient, pool: GroupPool,
                   way: JoinWayInfo | None = None) -> str:
    """The pool's QR code, asked from WeCom (and stored) while the row has none."""
    if pool.qr_code:
        return pool.qr_code
    way = way or (await wecom.call(GetJoinWay(config_id=pool.config_id))).join_way
    if way is None or not way.qr_code:
        raise WeComError("externalcontact/groupchat/get_join_way", "WeCom gave no QR code")
    async with db.unit_of_work() as session:
        row = await session.get(GroupPool, pool.id)
        assert row is not None, f"group_pool {pool.id} vanished during sync"
        row.qr_code = pool.qr_code = way.qr_code
    return way.qr_code


async def _save_pool(db: Database, pool_id: int, wanted: list[str], room_name: str, *,
                     bump: bool) -> None:
    async with db.unit_of_work() as session:
        row = await session.get(GroupPool, pool_id, with_for_update=True)
        assert row is not None, f"group_pool {pool_id} vanished during sync"
        row.chat_ids, row.room_name, row.stale = json.dumps(wanted), room_name, False
        row.version += 1 if bump else 0
        row.updated_at = utcnow()


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
