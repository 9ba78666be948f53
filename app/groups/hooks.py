"""What happens when the outbox settles a group call: a groupchat/get answer is applied to the
group (and may rotate its pool, or leave it without a group with room: people are told); an
update_join_way overtaken by a newer list is followed up.
Registered by the membership behaviour (handlers/membership.py)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.logs import get_logger
from app.engine.outbox.models import DEAD, SENT
from app.engine.wecom.api_contact import GroupChatDetail
from app.groups import pools, service
from app.groups.pool_alerts import PoolAlerts
from app.groups.sources import GroupSources

if TYPE_CHECKING:
    from app.engine.config import Settings
    from app.engine.outbox.outcomes import Outcome
    from app.engine.outbox.sender import AfterSettle, SettledHook
    from app.engine.outbox.store import Claimed
    from app.routing.flows import RoutingFlows

log = get_logger("sopbot.groups")


def pools_settled(flows: GroupSources, settings: Settings) -> AfterSettle:
    """After each settle transaction: the pools the row hooks touched are looked at, and
    people told when a segment is left without a group with room."""
    alerts = PoolAlerts.of(flows, settings)

    async def settle_pools(session: AsyncSession, now: datetime) -> None:
        await pools.settle_pools(session, now, alerts)
    return settle_pools


def group_synced(routing: RoutingFlows) -> SettledHook:
    async def hook(session: AsyncSession, claimed: Claimed, outcome: Outcome,
                   now: datetime) -> None:
        """The group as WeCom has it now: members, name, segment; its pool follows."""
        if outcome.label == DEAD:
            log.warning("group_sync_failed", key=claimed.idempotency_key,
                        errcode=outcome.values.get("errcode"))
        if outcome.label != SENT or not outcome.values.get("response"):
            return
        detail = GroupChatDetail.model_validate(json.loads(outcome.values["response"]))
        if detail.group_chat is None:
            return
        group = await service.apply_snapshot(session, detail.group_chat, now, routing,
                                             asked_at=claimed.created_at)
        if group.segment is not None:  # filled_at is `now` only when this read filled it
            pools.touch(session, group.segment, pools.FILLED if group.filled_at == now else None)
    return hook
