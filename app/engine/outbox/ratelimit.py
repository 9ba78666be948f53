"""Rate limits shared by every sender process: one slot row per key in the database.

WeCom counts per corp and API (10,000/min), per group robot (20/min) and so on; exceeding a limit
earns 45009 and a window-long block (wecom-reference §6). Every replica must therefore book from
the same calendar. A key's row holds when its next request may go out; booking a slot moves it
on by one interval (period ÷ count) under the row's lock. Spacing requests evenly, rather than
allowing a burst, keeps any window of one period at or under the count, whatever window WeCom
actually measures.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.config import Rate
from app.engine.db import insert_for
from app.engine.outbox.models import RateSlot

ANY_API = "*"
PER_ROBOT_API = "webhook/send"


# Corp-wide per-API frequency (a tenth of it as a burst) and the group robot's 20 messages a
# minute (wecom-reference §6).
DEFAULT_RATES: dict[str, Rate] = {ANY_API: Rate(10_000, 60.0, 1_000),
                                  PER_ROBOT_API: Rate(20, 60.0)}
def rate_key(api: str, stored_request: Mapping[str, Any]) -> str:
    """Requests that share a limit share a key: each robot has its own, other APIs one each."""
    if api == PER_ROBOT_API:
        return f"robot:{stored_request.get('robot', '')}"
    return f"api:{api}"


class RateLimits:
    def __init__(self, overrides: Mapping[str, Rate] | None = None) -> None:
        self.rates = {**DEFAULT_RATES, **(overrides or {})}

    def for_key(self, key: str) -> Rate:
        api = PER_ROBOT_API if key.startswith("robot:") else key.removeprefix("api:")
        return self.rates.get(api, self.rates[ANY_API])


async def take_slots(session: AsyncSession, key: str, rate: Rate, now: datetime,
                     max_wait: timedelta, wanted: int) -> list[datetime]:
    """Book up to `wanted` consecutive slots of the key that start within `max_wait`; their
    times, earliest first (fewer, or none, when the key is booked further out). The caller's
    transaction holds the row lock until it commits."""
    await session.execute(insert_for(session, RateSlot).values(key=key, next_at=now)
                          .on_conflict_do_nothing(index_elements=["key"]))
    tat = (await session.execute(
        select(RateSlot.next_at).where(RateSlot.key == key).with_for_update())).scalar_one()
    tat = max(tat, now)
    slots: list[datetime] = []
    while len(slots) < wanted and (slot := max(now, tat - rate.tolerance)) - now <= max_wait:
        slots.append(slot)
        tat += rate.interval
    if slots:
        await session.execute(update(RateSlot).where(RateSlot.key == key).values(next_at=tat))
    return slots


async def next_free(session: AsyncSession, key: str, rate: Rate) -> datetime | None:
    """When the key's next request may go out (it may be in the past: now, then)."""
    tat = (await session.execute(
        select(RateSlot.next_at).where(RateSlot.key == key))).scalar_one_or_none()
    return None if tat is None else tat - rate.tolerance


async def block_until(session: AsyncSession, key: str, until: datetime, rate: Rate) -> None:
    """WeCom said 45009: book nothing for this key before `until`, and no burst right then."""
    tat = until + rate.tolerance
    await session.execute(update(RateSlot).where(RateSlot.key == key, RateSlot.next_at < tat)
                          .values(next_at=tat))
