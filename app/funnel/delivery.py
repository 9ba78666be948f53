"""What the funnel records when a welcome's delivery is settled: sent (with its latency from
the callback) or missed. Registered on the outbox sender for kind "welcome" (app/main.py)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.funnel import service as funnel
from app.funnel import steps
from app.members.models import Member
from app.outbox.models import DEAD, EXPIRED, SENT
from app.outbox.outcomes import Outcome
from app.outbox.store import Claimed

WELCOME_KIND = "welcome"


async def welcome_settled(session: AsyncSession, claimed: Claimed, outcome: Outcome,
                          now: datetime) -> None:
    """Count the welcome as sent (latency: callback received → WeCom answered) or missed."""
    if outcome.label not in (SENT, DEAD, EXPIRED):
        return  # retried later, or waiting for an operator: not settled for the funnel yet
    code = json.loads(claimed.request).get("welcome_code")
    member = await session.scalar(select(Member).where(Member.welcome_code == code))
    if member is None:
        return  # a welcome queued by something other than the friend-add handler
    if outcome.label == SENT:
        latency = round((now - member.added_at).total_seconds() * 1000)
        await funnel.record(session, steps.WELCOME_SENT, f"welcome_sent:{member.id}", now,
                            member=member, latency_ms=latency)
    else:
        await funnel.record(session, steps.WELCOME_MISSED, f"welcome_missed:{claimed.id}", now,
                            member=member, detail=f"{outcome.label}: "
                            f"{outcome.values.get('errcode') or ''} "
                            f"{outcome.values.get('last_error') or ''}"[:500])
