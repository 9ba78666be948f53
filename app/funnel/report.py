"""`sopbot funnel`: how many subjects reached each step, and the step-to-step conversion.

A subject is a member once one exists, else the app's user id (steps before the friend add),
else the event itself, so a member who took a step twice is counted once. Each event is grouped
by the dimensions it was written with (app/funnel/service.py copies them at that moment).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, distinct, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database, utcnow
from app.funnel import steps
from app.funnel.models import FunnelEvent

DIMENSIONS = ("channel", "slot", "segment", "region")
UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1)}
SINCE = re.compile(r"([1-9][0-9]{0,3})([hd])")
EXTRAS = (steps.WELCOME_SKIPPED, steps.WELCOME_MISSED, steps.DEFAULT_CHANNEL_USED,
          steps.LEFT_GROUP, steps.DELETED_STAFF)
# Branches of the chain: a rejection comes out of a submission, routing out of an approval,
# so their conversion is measured against those, not against the step listed before them.
BASE_STEP = {steps.REJECTED: steps.SUBMITTED, steps.ROUTED: steps.APPROVED}
NO_VALUE = "(none)"


class ReportError(ValueError):
    """A bad --by or --since; the message is the one line the operator sees."""


def parse_by(by: str | None) -> str | None:
    if by is None or by in DIMENSIONS:
        return by
    raise ReportError(f"--by {by!r}: use one of {', '.join(DIMENSIONS)}")


def parse_since(since: str) -> timedelta:
    match = SINCE.fullmatch(since.strip())
    if match is None:
        raise ReportError(f"--since {since!r}: use a number of hours or days, e.g. 24h, 7d, 30d")
    return int(match.group(1)) * UNITS[match.group(2)]


@dataclass
class Group:
    """One group value's numbers: distinct subjects per step, and welcome latencies (ms)."""

    value: str
    counts: dict[str, int] = field(default_factory=dict)
    latencies: list[int] = field(default_factory=list)


def _subject() -> Any:
    # `||` with NULL is NULL on both databases, so coalesce picks the first id that exists;
    # the prefixes keep a member id from colliding with an app user id.
    ev = FunnelEvent
    return func.coalesce(literal("m:") + cast(ev.member_id, String),
                         literal("u:") + ev.platform_user_id, literal("k:") + ev.event_key)


def _dimension(by: str | None) -> list[Any]:
    return [getattr(FunnelEvent, by)] if by else []


async def gather(session: AsyncSession, by: str | None, since_at: datetime,
                 until_at: datetime | None = None) -> list[Group]:
    """The numbers of every group value that has events at or after `since_at` (and before
    `until_at`, when given)."""
    dim, ev = _dimension(by), FunnelEvent
    period = [ev.at >= since_at] + ([ev.at < until_at] if until_at is not None else [])
    groups: dict[str, Group] = {}
    counts = await session.execute(
        select(ev.step, func.count(distinct(_subject())), *dim)
        .where(*period, ev.step.in_(steps.ORDER + EXTRAS))
        .group_by(ev.step, *dim))
    for step, count, *value in counts:
        _group(groups, value, by).counts[step] = count
    latencies = await session.execute(
        select(ev.latency_ms, *dim).where(*period, ev.step == steps.WELCOME_SENT,
                                          ev.latency_ms.is_not(None)))
    for latency, *value in latencies:
        _group(groups, value, by).latencies.append(latency)
    return sorted(groups.values(), key=lambda g: (g.value == NO_VALUE, g.value))


def _group(groups: dict[str, Group], value: list[str | None], by: str | None) -> Group:
    name = "all" if by is None else (value[0] or NO_VALUE)
    return groups.setdefault(name, Group(name))


def percentile(values: list[int], p: float) -> int | None:
    """Nearest-rank percentile: a latency some welcome really had."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def conversion(counts: dict[str, int], step: str) -> tuple[str, str]:
    """(conversion in %, the step it is measured from); "-" for the first step or a zero base."""
    index = steps.ORDER.index(step)
    if index == 0:
        return "-", ""
    base = BASE_STEP.get(step, steps.ORDER[index - 1])
    before = counts.get(base, 0)
    return ("-" if before == 0 else f"{100 * counts.get(step, 0) / before:.1f}%"), base


def format_group(group: Group, by: str | None) -> list[str]:
    title = "all events" if by is None else f"{by} = {group.value}"
    lines = [title, f"  {'step':<16}{'count':>8}{'conv':>9}  from"]
    for step in steps.ORDER:
        conv, base = conversion(group.counts, step)
        lines.append(f"  {step:<16}{group.counts.get(step, 0):>8}{conv:>9}  {base}".rstrip())
    lines.append("  " + ", ".join(f"{extra} {group.counts.get(extra, 0)}" for extra in EXTRAS))
    p50, p99 = percentile(group.latencies, 50), percentile(group.latencies, 99)
    lines.append(f"  welcome latency p50 {_ms(p50)}, p99 {_ms(p99)} "
                 f"(n={len(group.latencies)})")
    return lines


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"


def format_report(groups: list[Group], by: str | None, since: str, since_at: datetime) -> str:
    header = f"funnel since {since_at:%Y-%m-%d %H:%M}Z ({since})"
    if not groups:
        return f"{header}\nno funnel events in this period"
    blocks = ["\n".join(format_group(group, by)) for group in groups]
    return header + "\n\n" + "\n\n".join(blocks)


async def funnel_report(database_url: str, by: str | None, since: str) -> str:
    """The whole report, read in one read-only session (`sopbot funnel`)."""
    since_at = utcnow() - parse_since(since)
    db = Database(database_url)
    try:
        async with db.reader() as session:
            groups = await gather(session, by, since_at)
    finally:
        await db.dispose()
    return format_report(groups, by, since, since_at)
