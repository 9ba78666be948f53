"""A segment whose pool has no group with room: every live group of it has reached its ideal
size (or none is live), so WeCom goes on seating new members in the newest group past that size
until its cap makes WeCom open one by itself. People are told, from the state as it is now:

- the operators (SOPBOT_OPERATORS) get an app message, once per segment and episode;
- the owner of the segment's newest group gets a task to open the next one, named so that
  sopbot puts it in the segment (room_name + the next number);
- the console shows a banner and /metrics the gauge sopbot_group_pool_empty, read at the time.

An episode is named by the segment's newest group: it ends only when a group with room appears,
which is a new group (a group that filled stays filled), so the next episode has another name.
The outbox keys carry that name: a join during the episode tells nobody again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.logs import get_logger
from app.engine.outbox import store as outbox
from app.engine.wecom.api import SendMessage, Text
from app.groups import service
from app.groups.models import LIVE, CustomerGroup, GroupPool
from app.groups.sources import GroupSources

if TYPE_CHECKING:
    from app.engine.config import Settings
    from app.groups.lifecycle_flows import PoolEmptyTexts
    from app.routing.flows import RoutingFlows

log = get_logger("sopbot.groups.pools")
KIND = "pool_empty"


@dataclass(frozen=True)
class EmptyPool:
    segment: str
    episode: int  # the id of the segment's newest group
    chat_id: str  # the group new members are seated in now ("" when none is live)
    group: str
    owner: str
    members: int
    since: datetime | None  # when its last group filled


async def empty_pools(session: AsyncSession) -> list[EmptyPool]:
    """Every segment whose pool has no group with room, by segment name."""
    found = []
    for segment in await session.scalars(select(GroupPool.segment).order_by(GroupPool.segment)):
        if (empty := await empty_pool(session, segment)) is not None:
            found.append(empty)
    return found


async def empty_pool(session: AsyncSession, segment: str) -> EmptyPool | None:
    """None when the segment has a group with room, or no pool yet (`sopbot groups sync`
    makes it; until then routing says so in its own words)."""
    if await session.scalar(service.with_room(segment).limit(1)) is not None:
        return None
    if await session.scalar(select(GroupPool.id).where(GroupPool.segment == segment)) is None:
        return None
    of_segment = select(CustomerGroup).where(CustomerGroup.segment == segment)
    episode, since = (await session.execute(
        select(func.max(CustomerGroup.id), func.max(CustomerGroup.filled_at))
        .where(CustomerGroup.segment == segment))).one()
    newest = await session.scalar(of_segment.where(CustomerGroup.status == LIVE)
                                  .order_by(CustomerGroup.id.desc()).limit(1))
    if newest is None:
        return EmptyPool(segment, episode or 0, "", "", "", 0, since)
    return EmptyPool(segment, episode, newest.chat_id, newest.name or newest.chat_id,
                     newest.owner, newest.member_count, since)


@dataclass(frozen=True)
class PoolAlerts:
    """What telling needs: the segments, the texts, the app and who the operators are."""

    routing: RoutingFlows
    texts: PoolEmptyTexts
    agent_id: int | None
    operators: frozenset[str]

    @classmethod
    def of(cls, flows: GroupSources, settings: Settings) -> PoolAlerts:
        return cls(flows.routing, flows.lifecycle.pool_empty, settings.agent_id,
                   settings.operators)


async def tell(session: AsyncSession, alerts: PoolAlerts, segment: str, now: datetime) -> bool:
    """When the segment's pool is empty, queue the operators' message and the owner's task
    (once per episode); True when something new was queued."""
    empty = await empty_pool(session, segment)
    config = alerts.routing.segments.get(segment)
    if empty is None or config is None:  # a pool of a segment routing.yaml no longer has
        return False
    if alerts.agent_id is None:
        log.warning("group_pool_empty", segment=segment, chat_id=empty.chat_id,
                    told="nobody: WECOM_AGENT_ID is not set")
        return False
    number = await service.next_room_number(session, segment, config.room_name)
    values = dict(segment=config.label, group=empty.group or "—", members=empty.members,
                  ideal=config.ideal_size, next_name=f"{config.room_name}{number}")
    key = f"pool-empty:{segment}:{empty.episode}"
    to = {"operators": "|".join(sorted(alerts.operators)), "owner": empty.owner}
    told = [who for who, text in (("operators", alerts.texts.operators),
                                  ("owner", alerts.texts.owner_task))
            if to[who] and await outbox.enqueue(session, f"{key}:{who}", SendMessage(
                agentid=alerts.agent_id, touser=to[who], msgtype="text",
                text=Text(content=text.format(**values))), kind=KIND)]
    if told:
        log.warning("group_pool_empty", segment=segment, chat_id=empty.chat_id,
                    members=empty.members, told=told)
    return bool(told)
