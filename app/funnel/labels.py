"""The names operators know the funnel's group values by, for the console and `sopbot funnel`:
channel and slot labels from funnel.yaml, segment labels from routing.yaml, and what an empty
value means in each grouping (an event written before the member had it, or a channel without
ad slots)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.funnel.report import (
    NO_VALUE,
    ReportError,
    format_report,
    gather,
    parse_by,
    parse_since,
)
from app.routing.flows import RoutingSources

EMPTY = {"channel": "未记录渠道", "slot": "无广告位", "segment": "未分群",
         "region": "未填地区"}
# Shown in a group's place for a step counted before its dimension is known (report.known),
# and in the valueless group's place for a step counted in each group from then on.
NOT_KNOWN_YET = {"segment": "未分群", "region": "未填地区"}
IN_EACH_GROUP = {"segment": "见各分群", "region": "见各地区"}


def value_labels(flows: RoutingSources, by: str | None) -> dict[str, str]:
    """Group value → label for the grouping `by` (regions are their own labels)."""
    if by is None:
        return {}
    declared = {"channel": flows.funnel.channel_labels,
                "slot": flows.funnel.slot_labels,
                "segment": flows.routing.segment_labels}.get(by, dict)()
    return {**declared, NO_VALUE: EMPTY[by]}


async def command_report(session: AsyncSession, args: list[str], now: datetime,
                         flows: RoutingSources | None = None) -> str:
    """/stats [dimension] [period]: the funnel report, its channels, slots and segments by
    their Chinese labels as in `sopbot funnel`; ReportError for bad arguments."""
    by = next((a for a in args if not a[:1].isdigit()), None)
    since = next((a for a in args if a[:1].isdigit()), "7d")
    if len(args) > 2:
        raise ReportError("too many arguments")
    parse_by(by)
    since_at = now - parse_since(since)
    labels = value_labels(flows, by) if flows is not None else None
    return format_report(await gather(session, by, since_at), by, since, since_at, labels)
