"""The funnel day by day: distinct subjects per step, group value and Asia/Shanghai day, counted
in the database (one grouped query, as report.gather) so a month of a million events stays fast.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.funnel import report, steps
from app.funnel.models import FunnelEvent

# step → Asia/Shanghai day → distinct subjects, per group value (report.Group.value's names).
Daily = dict[str, dict[str, dict[date, int]]]


def _day(dialect: str) -> Any:
    """The event's Asia/Shanghai calendar day. SQLite keeps UTC text and has no time zones;
    Shanghai has kept UTC+8 without summer time since 1991, so the offset is exact there."""
    if dialect == "sqlite":
        return func.date(FunnelEvent.at, "+8 hours")
    return func.date(func.timezone("Asia/Shanghai", FunnelEvent.at))


async def daily(session: AsyncSession, by: str | None, since_at: datetime,
                until_at: datetime | None = None) -> Daily:
    """Every group value's steps, day by day, in [since_at, until_at)."""
    ev = FunnelEvent
    dim = [getattr(ev, by)] if by else []
    day = _day(session.get_bind().dialect.name)
    period = [ev.at >= since_at] + ([ev.at < until_at] if until_at is not None else [])
    rows = await session.execute(
        select(ev.step, day, func.count(distinct(report.subject())), *dim)
        .where(*period, ev.step.in_(steps.ORDER)).group_by(ev.step, day, *dim))
    found: Daily = defaultdict(lambda: defaultdict(dict))
    for step, on, count, *value in rows:
        on = on if isinstance(on, date) else date.fromisoformat(on)  # SQLite answers text
        found[report.group_name(value, by)][step][on] = count
    return found
