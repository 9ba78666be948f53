"""What the funnel records when a welcome's delivery is settled: sent (with its latency from
the callback) or missed. Registered on the outbox sender for kind "welcome" (app/faces/web/main.py).

The welcome is queued with the callback itself, so it may be settled before the inbox worker
has created the member: the step is then recorded under the welcome code alone, and the
friend-add handler attaches it to the member (and its channel and slot) when it runs.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.outbox.models import DEAD, EXPIRED, SENT
from app.engine.outbox.outcomes import Outcome
from app.engine.outbox.store import Claimed
from app.funnel import service as funnel
from app.funnel import steps
from app.funnel.models import FunnelEvent
from app.members.models import Member

WELCOME_KIND = "welcome"
STEP_OF = {SENT: steps.WELCOME_SENT, DEAD: steps.WELCOME_MISSED, EXPIRED: steps.WELCOME_MISSED}


def _key(step: str, code: str) -> str:
    return f"{step}:{code}"


async def welcome_settled(session: AsyncSession, claimed: Claimed, outcome: Outcome,
                          now: datetime) -> None:
    """Count the welcome as sent (latency: callback stored → WeCom answered) or missed."""
    step = STEP_OF.get(outcome.label)
    if step is None:
        return  # retried later, or waiting for an operator: not settled for the funnel yet
    code = str(json.loads(claimed.request).get("welcome_code", ""))
    member = await session.scalar(select(Member).where(Member.welcome_code == code))
    if step == steps.WELCOME_SENT:
        latency = round((now - claimed.created_at).total_seconds() * 1000)
        await funnel.record(session, step, _key(step, code), now, member=member,
                            latency_ms=latency)
    else:
        detail = f"{outcome.label}: {outcome.values.get('errcode') or ''} " \
                 f"{outcome.values.get('last_error') or ''}"
        await funnel.record(session, step, _key(step, code), now, member=member,
                            detail=detail[:500])


async def attach(session: AsyncSession, code: str, member: Member) -> None:
    """Give a welcome step recorded before the member existed its member and dimensions."""
    keys = [_key(step, code) for step in (steps.WELCOME_SENT, steps.WELCOME_MISSED)]
    await session.execute(
        update(FunnelEvent).where(FunnelEvent.event_key.in_(keys), FunnelEvent.member_id.is_(None))
        .values(member_id=member.id, channel=member.channel, slot=member.slot,
                segment=member.segment, region=member.region))
