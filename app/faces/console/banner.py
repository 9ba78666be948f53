"""The banner every console page shows while a segment's pool has no group with room (new
members keep filling its newest group past the ideal size): read when the page is asked for,
so it stays exactly while the pool is empty. A dependency of the pages (routes.py), not of
what they link to (a review's photos); base.html draws it from request.state."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from app.faces.console.times import NONE, local
from app.groups.pool_alerts import empty_pools


@dataclass(frozen=True)
class EmptyPoolBanner:
    """A segment whose pool has no group with room, as the banner says it."""

    segment: str
    label: str
    group: str
    size: str
    since: str
    told: bool  # the operators and the owner were sent a message (WECOM_AGENT_ID is set)


async def empty_pool_banner(request: Request) -> None:
    if request.method not in ("GET", "HEAD"):
        return  # a form post answers with a redirect: the page it leads to reads it
    runtime = request.app.state.runtime
    routing, told = runtime.flows.routing, runtime.settings.agent_id is not None
    banners = []
    async with runtime.db.reader() as session:
        for empty in await empty_pools(session):
            segment = routing.segments.get(empty.segment)
            banners.append(EmptyPoolBanner(
                empty.segment, segment.label if segment else empty.segment, empty.group or NONE,
                f"{empty.members}/{segment.ideal_size if segment else NONE}",
                local(empty.since, "%Y-%m-%d %H:%M") if empty.since else NONE, told))
    request.state.empty_pools = banners
