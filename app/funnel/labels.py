"""The names operators know the funnel's group values by, for the console and `sopbot funnel`:
channel and slot labels from funnel.yaml, segment labels from routing.yaml, and what an empty
value means in each grouping (an event written before the member had it, or a channel without
ad slots)."""

from __future__ import annotations

from app.flows import Flows
from app.funnel.report import NO_VALUE

EMPTY = {"channel": "未记录渠道", "slot": "无广告位", "segment": "未分群",
         "region": "未填地区"}
# Shown in a group's place for a step counted before its dimension is known (report.known),
# and in the valueless group's place for a step counted in each group from then on.
NOT_KNOWN_YET = {"segment": "未分群", "region": "未填地区"}
IN_EACH_GROUP = {"segment": "见各分群", "region": "见各地区"}


def value_labels(flows: Flows, by: str | None) -> dict[str, str]:
    """Group value → label for the grouping `by` (regions are their own labels)."""
    if by is None:
        return {}
    declared = {"channel": flows.funnel.channel_labels,
                "slot": flows.funnel.slot_labels,
                "segment": flows.routing.segment_labels}.get(by, dict)()
    return {**declared, NO_VALUE: EMPTY[by]}
