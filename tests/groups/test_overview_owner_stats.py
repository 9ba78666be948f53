"""WeCom's per-owner figures (groupchat/statistic) read from the simulator into owner_group_stat
once a day: yesterday's Asia/Shanghai day, the owners of live groups in batches of at most 100,
the next hourly run asking nothing once the day is stored; the job registered hourly and on
taking the lead; the figures then shown beside the fallback groups (app/groups/overview.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.archive.models import OwnerGroupStat
from app.engine.bot.env import Env
from app.engine.db import Database
from app.engine.wecom.wiring import build_wecom
from app.faces.sim import archive, groups
from app.faces.sim.clock import SHANGHAI, ManualClock
from app.faces.sim.server import create_sim_app
from app.flows import load_flows
from app.groups.models import CustomerGroup
from app.groups.overview import overview
from app.groups.owner_stats import day_start, read_owner_stats
from handlers import group_stats
from tests.conftest import REPO, make_settings
from tests.e2e.sim_server import CORP_ID, SECRET, sim_settings

FLOWS = load_flows(REPO / "sop_flows")
TODAY_9 = datetime(2026, 12, 2, 9, tzinfo=SHANGHAI)
YESTERDAY = date(2026, 12, 1)
STAT = "/cgi-bin/externalcontact/groupchat/statistic"


class Counting(httpx.AsyncBaseTransport):
    """The simulator in process, counting the statistic calls and keeping their bodies."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.bodies: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == STAT:
            self.bodies.append(request.content)
        return await self.inner.handle_async_request(request)


@dataclass
class Corp:
    db: Database
    env: Env[Any]
    transport: Counting
    now: datetime


@pytest.fixture
async def corp(db_url: str) -> AsyncIterator[Corp]:
    clock = ManualClock(start=(TODAY_9 - timedelta(days=2)).timestamp())
    sim = create_sim_app(sim_settings(), clock)
    world = sim.state.sim.world
    mine = groups.group_create(world, "zhangsan", chat_id="wrMine", members=["wmA", "wmB"])
    clock.set(TODAY_9.timestamp())
    yesterday_8 = (TODAY_9 - timedelta(days=1, hours=1)).timestamp()
    for sender, minutes in (("wmA", 0), ("wmA", 5), ("zhangsan", 10), ("wmB", 15 * 60)):
        archive.post_text(world, mine.chat_id, sender, "早上好", at=yesterday_8 + minutes * 60)
    archive.post_text(world, mine.chat_id, "wmB", "今天的不算")
    transport = Counting(sim)
    settings = make_settings(db_url, corp_id=CORP_ID, agent_secret=SECRET, api_base="http://sim")
    db = Database(db_url)
    http, wecom, _ = build_wecom(settings, db, transport=transport)
    async with db.unit_of_work() as session:
        # wrMine's owner and 120 others (more than one call's 100); a dismissed group's owner
        # is nobody to ask.
        for n, owner in enumerate(["zhangsan", *(f"owner{k:03d}" for k in range(120))]):
            session.add(CustomerGroup(chat_id="wrMine" if n == 0 else f"wr{n}", owner=owner,
                                      name=f"群{n}", status="live"))
        session.add(CustomerGroup(chat_id="wrGone", owner="retired", status="dismissed"))
    try:
        yield Corp(db, Env(settings, FLOWS, db, wecom, lambda: TODAY_9.astimezone(UTC)),
                   transport, TODAY_9)
    finally:
        await http.aclose()
        await db.dispose()


async def test_yesterdays_figures_of_every_owner_are_stored_once_a_day(corp: Corp) -> None:
    [job] = group_stats.router().jobs()
    assert (job.name, job.every_s, job.on_lead) == ("read_owner_group_stats", 3600, True)
    await job.run(corp.env)
    assert len(corp.transport.bodies) == 2  # 121 owners: 100, then 21
    asked = [httpx.Response(200, content=b).json() for b in corp.transport.bodies]
    assert [len(a["owner_filter"]["userid_list"]) for a in asked] == [100, 21]
    assert {(a["day_begin_time"], a["day_end_time"]) for a in asked} == {
        (day_start(YESTERDAY), day_start(YESTERDAY))}
    assert day_start(YESTERDAY) == int(datetime(2026, 12, 1, tzinfo=SHANGHAI).timestamp())
    async with corp.db.reader() as session:
        rows = {r.owner: r for r in await session.scalars(select(OwnerGroupStat))}
    assert len(rows) == 121 and "retired" not in rows
    mine = rows["zhangsan"]
    assert (mine.day, mine.chat_total, mine.chat_has_msg, mine.msg_total,
            mine.member_has_msg) == (YESTERDAY, 1, 1, 4, 3)  # not today's message
    assert (rows["owner007"].chat_total, rows["owner007"].msg_total) == (0, 0)
    # The hourly runs after: the day is stored, nothing is asked.
    await job.run(corp.env)
    assert len(corp.transport.bodies) == 2
    # A new owner's group appears: only they are asked.
    async with corp.db.unit_of_work() as session:
        session.add(CustomerGroup(chat_id="wrNew", owner="newbie", status="live"))
    assert await read_owner_stats(corp.db, corp.env.wecom, corp.now) == 1
    assert [httpx.Response(200, content=b).json()["owner_filter"]["userid_list"]
            for b in corp.transport.bodies[2:]] == [["newbie"]]
    # The figures are shown beside the groups the archive does not cover, as the owner's.
    async with corp.db.reader() as session:
        page = await overview(session, FLOWS, corp.now, limit=500)
    assert page.owners["zhangsan"].msg_total == 4
    assert page.owners["zhangsan"].day == YESTERDAY


async def test_the_job_waits_without_a_wecom_client(corp: Corp) -> None:
    await group_stats.read_owner_group_stats(Env(corp.env.settings, FLOWS, corp.db, None))
    assert corp.transport.bodies == []
