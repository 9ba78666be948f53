"""Each segment's pool: one 加入群聊 code (join way) with up to five of the segment's groups
behind it. New members scan the code and WeCom seats them in the first listed group that has
room (or creates one, auto_create_room, named after the segment's room_name).

A group that reaches the segment's ideal size leaves the list and the next one takes its place:
sopbot recomputes the list after every membership change and, when it differs from what WeCom
was last asked for, queues an update_join_way carrying the whole list. Updates may be sent out of
order by several sender workers, so each one's settle hook compares the list it carried with the
pool's current one and queues another when it was overtaken: the last word is always current.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.logs import get_logger
from app.engine.outbox import store as outbox
from app.engine.outbox.models import DEAD, EXPIRED, SENT, UNKNOWN
from app.engine.wecom.api_contact import UpdateJoinWay
from app.groups import pool_alerts, service
from app.groups.models import LIVE, CustomerGroup, GroupPool
from app.groups.pool_alerts import PoolAlerts
from app.groups.sources import GroupSources

if TYPE_CHECKING:
    from app.engine.config import Settings
    from app.engine.outbox.outcomes import Outcome
    from app.engine.outbox.store import Claimed

log = get_logger("sopbot.groups.pools")
JOIN_WAY_KIND = "join_way"
MAX_CHATS = 5  # WeCom's limit on a join way's chat_id_list
QR_SCENE: Final = 2


async def pool_of(session: AsyncSession, segment: str, *, lock: bool = False) -> GroupPool | None:
    query = select(GroupPool).where(GroupPool.segment == segment)
    return await session.scalar(query.with_for_update() if lock else query)


@dataclass(frozen=True)
class Seat:
    """Where a segment's new members go now: the group WeCom seats them in and the code."""

    chat_id: str
    group_name: str
    qr_code: str


async def seat_for(session: AsyncSession, segment: str) -> Seat | None:
    """None while the segment has no pool (`sopbot groups sync` has not made one)."""
    pool = await pool_of(session, segment)
    if pool is None or not chat_ids(pool):
        return None
    chat_id = chat_ids(pool)[0]
    name = await session.scalar(select(CustomerGroup.name).where(
        CustomerGroup.chat_id == chat_id))
    return Seat(chat_id, name or chat_id, pool.qr_code)


def chat_ids(pool: GroupPool) -> list[str]:
    return list(json.loads(pool.chat_ids))


async def pooled_chat_ids(session: AsyncSession) -> set[str]:
    """Every group behind a segment's 加入群聊 code (new members are seated in them)."""
    return {chat_id for pool in await session.scalars(select(GroupPool))
            for chat_id in chat_ids(pool)}


async def wanted_chats(session: AsyncSession, segment: str) -> list[str]:
    """The segment's live groups that have not filled yet, oldest first, at most five; when
    every group has filled, the newest live one (a join way needs at least one group, and WeCom
    opens a new room once it is full to its cap)."""
    wanted = list(await session.scalars(service.with_room(segment).limit(MAX_CHATS)))
    if not wanted:  # an empty pool: pool_alerts.py tells people
        live = select(CustomerGroup.chat_id).where(CustomerGroup.segment == segment,
                                                   CustomerGroup.status == LIVE)
        newest = await session.scalar(live.order_by(CustomerGroup.id.desc()).limit(1))
        wanted = [newest] if newest else []
    return wanted


async def after_change(session: AsyncSession, group: CustomerGroup, flows: GroupSources,
                       settings: Settings, now: datetime) -> None:
    """A group's membership or status changed: it may have filled, and its pool may change
    (and be left without a group with room: people are told)."""
    filled = service.reached_ideal_size(group, flows.routing, now)
    if group.segment is not None:
        await rebalance(session, group.segment, now)
        if filled or group.status != LIVE:  # only these can leave the pool without room
            await pool_alerts.tell(session, PoolAlerts.of(flows, settings), group.segment, now)


async def rebalance(session: AsyncSession, segment: str, now: datetime,
                    sent: list[list[str]] | None = None) -> bool:
    """Queue an update of the segment's join way when its groups should change, or when an
    update that landed (`sent`) carried another list than the pool's; False when nothing is
    queued, or the segment has no pool yet (`sopbot groups sync` makes it)."""
    pool = await pool_of(session, segment, lock=True)  # one rebalance per pool at a time
    if pool is None:
        return False
    wanted, current = await wanted_chats(session, segment), chat_ids(pool)
    if wanted and (wanted != current or pool.stale):
        pool.chat_ids, pool.updated_at, pool.stale = json.dumps(wanted), now, False
        await _queue_update(session, pool, update_call(pool, wanted))
        log.info("group_pool_rotated", segment=segment, left=sorted(set(current) - set(wanted)),
                 joined=sorted(set(wanted) - set(current)))
        return True
    if current and any(landed != current for landed in sent or ()):
        log.info("join_way_update_overtaken", segment=segment)
        await _queue_update(session, pool, update_call(pool, current))
        return True
    return False


def update_call(pool: GroupPool, wanted: list[str]) -> UpdateJoinWay:
    """The whole join way, not a patch: whichever update lands last leaves it complete."""
    return UpdateJoinWay(config_id=pool.config_id, scene=QR_SCENE, auto_create_room=1,
                         room_base_name=pool.room_name, chat_id_list=wanted,
                         state=pool.segment)


async def _queue_update(session: AsyncSession, pool: GroupPool, call: UpdateJoinWay) -> None:
    pool.version += 1
    await outbox.enqueue(session, f"joinway:{pool.segment}:{pool.version}", call,
                         kind=JOIN_WAY_KIND)


POOLS_INFO = "group_pools"  # session.info: segment → what to look at, for after_settled
FAILED = "failed"
FILLED = "filled"  # a group read from WeCom reached its ideal size: the pool may be empty now


def touch(session: AsyncSession, segment: str, note: list[str] | str | None = None) -> None:
    """Note a pool to look at once the settle hooks are done (`settle_pools`): pool rows are
    locked last, in segment order, after every group row, as handlers lock them. `note`: the
    list an update carried, FAILED, or FILLED."""
    noted = session.info.setdefault(POOLS_INFO, {}).setdefault(segment, [])
    if note is not None:
        noted.append(note)


async def join_way_settled(session: AsyncSession, claimed: Claimed, outcome: Outcome,
                           now: datetime) -> None:
    """An update that landed is checked against the pool (it may have been overtaken). One
    that failed leaves the pool unconfirmed, so the next change sends the whole list again
    (not at once: a list WeCom refuses would fail in a loop)."""
    sent = json.loads(claimed.request)
    segment = str(sent.get("state", ""))
    if outcome.label == SENT:
        touch(session, segment, list(sent["chat_id_list"]))
    elif outcome.label in (DEAD, EXPIRED, UNKNOWN):  # an operator sees it in the outbox
        log.error("join_way_update_failed", key=claimed.idempotency_key, outcome=outcome.label,
                  errcode=outcome.values.get("errcode"))
        touch(session, segment, FAILED)


async def settle_pools(session: AsyncSession, now: datetime, alerts: PoolAlerts) -> None:
    """After the settle hooks: each touched pool, in segment order; where a group filled, the
    pool may be left without room (a join way's update changes no group's size)."""
    for segment, noted in sorted(session.info.pop(POOLS_INFO, {}).items()):
        await rebalance(session, segment, now, [n for n in noted if n not in (FAILED, FILLED)])
        if FAILED in noted and (pool := await pool_of(session, segment)) is not None:
            pool.stale = True
        if FILLED in noted:
            await pool_alerts.tell(session, alerts, segment, now)
