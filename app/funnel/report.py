"""`sopbot funnel`: how many subjects reached each step, and the step-to-step conversion.

A subject is a member once one exists, else the app's user id (steps before the friend add),
else the event itself, so a member who took a step twice is counted once. Each event is grouped
by the dimensions it was written with (app/funnel/service.py copies them at that moment).

Conversions are computed within each channel and then pooled: only the channels that have the
base step count toward a step's rate, so friend adds from 抖音 or 地推 (which have no app
landing page) do not inflate the app's add-friend rate. A dimension known only from a step on
(a member is segmented when routed) shows the earlier steps as not known yet, not as zero.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, distinct, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.db import Database, utcnow
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
# The step from which a dimension is written: the member gives a region when submitting and is
# given a segment when routed; every earlier event of theirs has it empty (the NO_VALUE group).
KNOWN_FROM = {"region": steps.SUBMITTED, "segment": steps.ROUTED}


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
    """One group value's numbers: distinct subjects per step, the same per channel (for the
    conversions; empty when grouped by channel), and welcome latencies (ms)."""

    value: str
    counts: dict[str, int] = field(default_factory=dict)
    by_channel: dict[str, dict[str, int]] = field(default_factory=dict)
    latencies: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Rate:
    """A step's conversion: "37.8%", or "-" for the first step or a zero base; the step it is
    measured from; the channels it counts when others lack that step (else empty)."""

    text: str
    base: str
    within: tuple[str, ...] = ()


def subject() -> Any:
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
        select(ev.step, func.count(distinct(subject())), *dim)
        .where(*period, ev.step.in_(steps.ORDER + EXTRAS))
        .group_by(ev.step, *dim))
    for step, count, *value in counts:
        _group(groups, value, by).counts[step] = count
    if by != "channel":
        per_channel = await session.execute(
            select(ev.step, func.count(distinct(subject())), ev.channel, *dim)
            .where(*period, ev.step.in_(steps.ORDER)).group_by(ev.step, ev.channel, *dim))
        for step, count, channel, *value in per_channel:
            _group(groups, value, by).by_channel.setdefault(channel or NO_VALUE, {})[step] = count
    latencies = await session.execute(
        select(ev.latency_ms, *dim).where(*period, ev.step == steps.WELCOME_SENT,
                                          ev.latency_ms.is_not(None)))
    for latency, *value in latencies:
        _group(groups, value, by).latencies.append(latency)
    return sorted(groups.values(), key=lambda g: (g.value == NO_VALUE, g.value))


def group_name(value: list[str | None], by: str | None) -> str:
    """The group a row of a query grouped `by` belongs to ("all" when not grouped)."""
    return "all" if by is None else (value[0] or NO_VALUE)


def _group(groups: dict[str, Group], value: list[str | None], by: str | None) -> Group:
    name = group_name(value, by)
    return groups.setdefault(name, Group(name))


def percentile(values: list[int], p: float) -> int | None:
    """Nearest-rank percentile: a latency some welcome really had."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def known(by: str | None, value: str, step: str) -> bool:
    """Whether `step` can be counted in the group `value` (see KNOWN_FROM): a value's group
    starts at the step the value is known at; the group without one (NO_VALUE) holds the steps
    before it, after which everyone is in their own group (its 0 routed would read as 0 %)."""
    first = KNOWN_FROM.get(by or "")
    if first is None:
        return True
    before = steps.ORDER.index(step) < steps.ORDER.index(first)
    return before if value == NO_VALUE else not before


def base_of(step: str) -> str:
    index = steps.ORDER.index(step)
    return "" if index == 0 else BASE_STEP.get(step, steps.ORDER[index - 1])


def conversion(group: Group, step: str, by: str | None = None) -> Rate:
    """The step's rate from its base step, within each channel that has the base step."""
    base = base_of(step)
    if not base or not known(by, group.value, base):
        return Rate("-", base)
    channels = group.by_channel or {group.value: group.counts}
    having = [name for name, counts in channels.items() if counts.get(base, 0)]
    before = sum(channels[name][base] for name in having)
    after = sum(channels[name].get(step, 0) for name in having)
    text = "-" if before == 0 else f"{100 * after / before:.1f}%"
    left_out = any(counts.get(step, 0) for name, counts in channels.items() if name not in having)
    return Rate(text, base, tuple(having) if left_out else ())


def format_group(group: Group, by: str | None, labels: dict[str, str]) -> list[str]:
    title = "all events" if by is None else f"{by} = {group.value}"
    label = labels.get(group.value)
    lines = [f"{title} ({label})" if label else title,
             f"  {'step':<16}{'count':>8}{'conv':>9}  from"]
    for step in steps.ORDER:
        if not known(by, group.value, step):
            lines.append(f"  {step:<16}{'-':>8}{'':>9}  ({_elsewhere(by, group.value)})")
            continue
        rate = conversion(group, step, by)
        within = f" (within {', '.join(rate.within)})" if rate.within else ""
        lines.append(f"  {step:<16}{group.counts.get(step, 0):>8}{rate.text:>9}  "
                     f"{rate.base}{within}".rstrip())
    lines.append("  " + ", ".join(f"{extra} {group.counts.get(extra, 0)}" for extra in EXTRAS))
    p50, p99 = percentile(group.latencies, 50), percentile(group.latencies, 99)
    lines.append(f"  welcome latency p50 {_ms(p50)}, p99 {_ms(p99)} "
                 f"(n={len(group.latencies)})")
    return lines


def _elsewhere(by: str | None, value: str) -> str:
    """Why a group has no count at a step (report.known)."""
    first = KNOWN_FROM[by or ""]
    return (f"counted in each {by} from {first}" if value == NO_VALUE
            else f"{by} not known before {first}")


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"


def format_report(groups: list[Group], by: str | None, since: str, since_at: datetime,
                  labels: dict[str, str] | None = None) -> str:
    """The report's text; `labels`: the group values' names from sop_flows (labels.py)."""
    header = f"funnel since {since_at:%Y-%m-%d %H:%M}Z ({since})"
    if not groups:
        return f"{header}\nno funnel events in this period"
    blocks = ["\n".join(format_group(group, by, labels or {})) for group in groups]
    return header + "\n\n" + "\n\n".join(blocks)


async def funnel_report(database_url: str, by: str | None, since: str,
                        labels: dict[str, str] | None = None) -> str:
    """The whole report, read in one read-only session (`sopbot funnel`)."""
    since_at = utcnow() - parse_since(since)
    db = Database(database_url)
    try:
        async with db.reader() as session:
            groups = await gather(session, by, since_at)
    finally:
        await db.dispose()
    return format_report(groups, by, since, since_at, labels)
