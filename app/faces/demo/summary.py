"""The demo's closing numbers, read from the database with the reports' own code: the funnel
(app/funnel/report.py `gather`, the numbers of `sopbot funnel --by channel`) as one table of
steps by channel, and the calendar's confirmation report (`sopbot calendar report`)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from app.calendar.tracking import report as task_report
from app.engine.config import SHANGHAI
from app.engine.db import Database
from app.faces.demo.wire import Wire
from app.funnel import steps
from app.funnel.report import Group, gather, percentile

ROWS = (*steps.ORDER, steps.LEFT_GROUP)
# The demo's database is new every run: everything in it is this run's, however many days
# it played (up to 31, before today).
EVERYTHING = datetime(2000, 1, 1, tzinfo=UTC)


async def funnel_groups(db: Database, by: str | None) -> list[Group]:
    async with db.reader() as session:
        return await gather(session, by, EVERYTHING)


async def funnel_counts(db: Database) -> dict[str, int]:
    """Every channel together: distinct members (or app users) per step."""
    groups = await funnel_groups(db, None)
    return groups[0].counts if groups else {}


async def funnel_table(db: Database) -> list[str]:
    """Steps (distinct people) by channel, and all channels together. No conversion column:
    the app's own steps exist for one channel only, so "all" would divide across channels
    (`sopbot funnel --by channel` gives each channel's conversion)."""
    [total] = await funnel_groups(db, None) or [Group("all")]
    channels = await funnel_groups(db, "channel")
    names = ["all", *(g.value for g in channels)]
    width = max(len(n) for n in names) + 2
    lines = [f"{'step':<16}" + "".join(f"{n:>{width}}" for n in names)]
    for step in ROWS:
        cells = [total.counts.get(step, 0), *(g.counts.get(step, 0) for g in channels)]
        lines.append(f"{step:<16}" + "".join(f"{c:>{width}}" for c in cells))
    p50, p99 = percentile(total.latencies, 50), percentile(total.latencies, 99)
    lines.append(f"welcome latency (friend add → WeCom accepted the welcome): p50 {p50} ms, "
                 f"p99 {p99} ms, n={len(total.latencies)}")
    return lines


# What the simulated WeCom accepted from the service, by API: the service's side of the story.
RECEIVED = {"externalcontact/send_welcome_msg": "welcomes", "message/send": "staff notices",
            "externalcontact/mark_tag": "tag marks",
            "externalcontact/groupchat/update_join_way": "group-code rotations",
            "externalcontact/add_msg_template": "mass tasks",
            "externalcontact/remind_groupmsg_send": "reminders",
            "externalcontact/cancel_groupmsg_send": "cancellations"}


async def received(wire: Wire) -> dict[str, int]:
    """Requests WeCom answered with errcode 0, per API path."""
    return {path: sum(r["errcode"] == 0 for r in await wire.requests_to_wecom(path))
            for path in RECEIVED}


def received_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[path]} {label}" for path, label in RECEIVED.items())


async def calendar_lines(db: Database, first: date) -> list[str]:
    """Confirmed, missed and open mass tasks per owner and per post, from the first day."""
    since = datetime.combine(first, datetime.min.time(), SHANGHAI).astimezone(UTC)
    async with db.reader() as session:
        return await task_report(session, since)
