"""What the operators do before the first member arrives: staff members make each segment's first
customer groups in the WeCom client (groups cannot be made through the API), then the four
syncs of the README run in this process (`codes sync`, `tags sync`, `templates sync`,
`groups sync`), and the content team queues the calendar's columns."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from app.calendar.flows import CalendarFlows
from app.faces.demo.texts import DemoTexts
from app.faces.demo.wire import DemoError, Wire, wait_for
from app.faces.web.runtime import Runtime
from app.funnel.codes import FAILED, sync_codes
from app.groups.models import CustomerGroup, GroupPool
from app.groups.sync import sync_groups
from app.groups.templates import sync_templates
from app.routing.flows import RoutingFlows
from app.routing.tags import sync_tags

GROUPS_PER_SEGMENT = 3  # named room_name1..3, so a segment can fill a group or two


def staff_of(runtime: Runtime) -> list[str]:
    """The staff members the funnel hands new friends to; they own the groups too."""
    return sorted({s for c in runtime.flows.funnel.channels.values() for s in c.staff})


async def make_groups(wire: Wire, routing: RoutingFlows, owners: list[str]) -> int:
    """Each segment's first groups, made in the client by alternating owners."""
    made = 0
    for segment in routing.segments.values():
        for n in range(1, GROUPS_PER_SEGMENT + 1):
            await wire.scenario("group_create", owner=owners[made % len(owners)],
                                name=f"{segment.room_name}{n}")
            made += 1

    async def known() -> bool:  # read by the service and given a segment by their name
        async with wire.db.reader() as session:
            count = await session.scalar(select(func.count()).select_from(CustomerGroup).where(
                CustomerGroup.segment.is_not(None), CustomerGroup.synced_at.is_not(None)))
        return count == made
    await wait_for(known, "the service reading the new groups")
    return made


async def sync_all(runtime: Runtime) -> str:
    """The syncs an operator runs once: 联系我 codes, corp tags, welcome templates, pools."""
    db, wecom, flows = runtime.db, runtime.wecom, runtime.flows
    codes = await sync_codes(db, wecom, flows.funnel)
    if failed := [c.line() for c in codes if c.outcome == FAILED]:
        raise DemoError(f"codes sync: {failed[0]}")
    tags = await sync_tags(db, wecom, flows)
    templates = await sync_templates(db, wecom, flows)
    if failed := [line for line in templates if line.startswith("failed")]:
        raise DemoError(f"templates sync: {failed[0]}")
    report = await sync_groups(db, wecom, flows.routing, staff_of(runtime))
    async with db.reader() as session:
        pools = await session.scalar(select(func.count()).select_from(GroupPool))
    if report.failed or pools != len(flows.routing.segments):
        raise DemoError(f"groups sync: {'; '.join(report.lines)}")
    return (f"{len(codes)} 联系我 codes, {len(tags)} tag groups, {len(templates)} group welcome "
            f"templates, {pools} group pools")


def column_uses(calendar: CalendarFlows) -> Counter[str]:
    """How many posts a day take an item of each column (over all segments)."""
    return Counter(slot.column for segment in calendar.segments.values()
                   for slot in segment.slots)


async def queue_content(wire: Wire, texts: DemoTexts, calendar: CalendarFlows,
                        days: int) -> int:
    """Enough items for every slot of the simulated days, and for a column only the talks
    read (sop_flows/talks.yaml) one a day (POST /api/content)."""
    queued, uses = 0, column_uses(calendar)
    for column in sorted(calendar.columns):
        for item in texts.items(column, max(uses.get(column, 0), 1) * days):
            await wire.api("POST", "/api/content", json={"column": column, **item.model_dump()})
            queued += 1
    return queued
