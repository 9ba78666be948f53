"""app/groups/overview.py, what the console's groups page, `sopbot groups` and GET /api/groups
read: every live group with its stage, health and last 7 days of activity with their source,
paged by cursor (chat_id order) or by offset (the console's triage order), filtered; the
owners' WeCom figures beside the fallback groups; the rollups read through their indexes. And
GET /api/groups itself: its shape, its pages, its key; `sopbot groups --stage` with the
activity columns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.archive.models import OwnerGroupStat
from app.engine.db import Database, utcnow
from app.faces.cli.main import cli
from app.flows import load_flows
from app.groups.models import CustomerGroup, GroupMember
from app.groups.overview import BY_TRIAGE, Overview, overview
from tests.archive.test_reports import NOW, Talk, feed, full_scans, plans, statements
from tests.conftest import API_KEY, REPO, make_settings, serve_app
from tests.funnel.test_codes import env_file

FLOWS = load_flows(REPO / "sop_flows")
# chat_id → (segment, owner, filled days ago or None); the first three the archive has seen.
# Made out of chat_id order: the pages' order is the ids', not the rows'.
GROUPS: dict[str, tuple[str | None, str, int | None]] = {
    "wrD": ("reseller", "wangwu", None), "wrB": ("online", "zhangsan", 5),
    "wrE": (None, "wangwu", 90), "wrA": ("online", "zhangsan", 90),
    "wrC": ("reseller", "lisi", 90)}
AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def seed(db: Database, now: datetime) -> None:
    old = now - timedelta(days=120)
    async with db.unit_of_work() as session:
        for chat_id, (segment, owner, filled) in GROUPS.items():
            session.add(CustomerGroup(
                chat_id=chat_id, owner=owner, segment=segment, name=f"群{chat_id}",
                member_count=20, status="live", created_at=old, updated_at=old,
                filled_at=now - timedelta(days=filled) if filled is not None else None))
            for n in range(20):
                session.add(GroupMember(chat_id=chat_id, userid=f"wm{chat_id}{n}", type=2,
                                        joined_at=old))
        session.add(CustomerGroup(chat_id="wrGone", owner="zhangsan", segment="online",
                                  name="散了", status="dismissed", created_at=old))
        session.add(OwnerGroupStat(owner="wangwu", day=now.date() - timedelta(days=1),
                                   chat_total=2, chat_has_msg=1, member_total=40,
                                   member_has_msg=3, msg_total=17, new_member_cnt=0))
    talk = Talk(now)
    await feed(db, [
        *[talk.say("wrA", f"wmwrA{n}", n) for n in range(8)],  # 8 customers in 8 days
        talk.say("wrA", "zhangsan", 1), talk.say("wrA", "wmwrA0", 20),
        talk.say("wrB", "zhangsan", 0),  # the archive saw wrB: its owner's post
        talk.say("wrC", "wmwrC1", 25)])  # wrC: a month ago, silent this week


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await seed(database, NOW)
    yield database
    await database.dispose()


async def read(db: Database, **options: Any) -> Overview:
    async with db.reader() as session:
        return await overview(session, FLOWS, NOW, **options)


async def test_each_group_with_its_stage_health_and_activity_source(db: Database) -> None:
    page = await read(db)
    rows = {g.chat_id: g for g in page.groups}
    assert list(rows) == ["wrA", "wrB", "wrC", "wrD", "wrE"]  # live only, chat_id order
    assert (page.total, page.next_cursor) == (5, None)
    a, b, c, d, e = (rows[k] for k in ("wrA", "wrB", "wrC", "wrD", "wrE"))
    assert (a.activity.source, a.activity.messages_7d, a.activity.speakers_7d,
            a.activity.staff_messages_7d) == ("archive", 8, 7, 1)
    assert (b.activity.messages_7d, b.activity.speakers_7d) == (1, 0)
    assert (c.activity.source, c.activity.messages_7d, c.activity.speakers_7d) == (
        "archive", 0, 0)
    for fallback in (d, e):
        assert (fallback.activity.source, fallback.activity.messages_7d,
                fallback.activity.speakers_7d) == ("fallback", None, None)
        assert fallback.health.source == "fallback"
    assert {k: g.health.stage for k, g in rows.items()} == {
        "wrA": "daily", "wrB": "strong", "wrC": "weak", "wrD": "filling", "wrE": "weak"}
    assert a.health.speakers == 8 and a.health.score >= 30  # 8 of 20 spoke in the window
    # WeCom's figures of the fallback groups' owner, as the owner's.
    assert list(page.owners) == ["wangwu"] and page.owners["wangwu"].msg_total == 17


async def test_pages_by_cursor_by_offset_and_filters(db: Database) -> None:
    first = await read(db, limit=2)
    assert [g.chat_id for g in first.groups] == ["wrA", "wrB"] and first.next_cursor == "wrB"
    second = await read(db, limit=2, cursor=first.next_cursor)
    assert [g.chat_id for g in second.groups] == ["wrC", "wrD"]
    last = await read(db, limit=2, cursor=second.next_cursor)
    assert [g.chat_id for g in last.groups] == ["wrE"] and last.next_cursor is None
    # The console's order: zombies first, then routing.yaml's segment order, then the rest.
    triage = await read(db, order=BY_TRIAGE)
    assert [g.chat_id for g in triage.groups] == ["wrC", "wrE", "wrD", "wrB", "wrA"]
    assert [g.chat_id for g in (await read(db, order=BY_TRIAGE, offset=3, limit=1)).groups] == [
        "wrB"]
    weak = await read(db, stage="weak")
    assert [g.chat_id for g in weak.groups] == ["wrC", "wrE"] and weak.total == 2
    assert weak.counts == {"weak": 2, "filling": 1, "strong": 1, "daily": 1}
    reseller = await read(db, segment="reseller")
    assert [g.chat_id for g in reseller.groups] == ["wrC", "wrD"] and reseller.total == 2
    assert reseller.counts is None  # chat_id order: the page's groups only were assessed
    by_stage = await read(db, segment="reseller", order=BY_TRIAGE)
    assert by_stage.counts == {"weak": 1, "filling": 1, "strong": 0, "daily": 0}
    assert [g.chat_id for g in (await read(db, segment="")).groups] == ["wrE"]


async def test_a_page_reads_the_rollups_through_their_indexes(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("the plans are SQLite's")
    with statements(db) as run:
        await read(db, limit=3)
        await read(db, order=BY_TRIAGE, limit=3)
    assert not any("archive_message" in statement for statement, _ in run)
    assert full_scans(await plans(db, run)) == []


# --- GET /api/groups -------------------------------------------------------------------------


async def test_the_api_pages_every_live_group_with_its_activity(db_url: str) -> None:
    now = utcnow()
    async with serve_app(make_settings(db_url), run_worker=False) as app:
        await seed(app.runtime.db, now)
        first = await app.client.get("/api/groups", params={"limit": 3}, headers=AUTH)
        assert first.status_code == 200, first.text
        body = first.json()
        assert [g["chat_id"] for g in body["groups"]] == ["wrA", "wrB", "wrC"]
        assert body["next_cursor"] == "wrC"
        a = body["groups"][0]
        assert {k: a[k] for k in ("name", "segment", "owner", "members", "stage")} == {
            "name": "群wrA", "segment": "online", "owner": "zhangsan", "members": 20,
            "stage": "daily"}
        assert a["activity"] == {"source": "archive", "messages_7d": 8, "speakers_7d": 7}
        assert isinstance(a["health"], int) and 0 <= a["health"] <= 100
        filled = datetime.fromisoformat(a["filled_at"].replace("Z", "+00:00"))
        assert abs(filled - (now - timedelta(days=90))) < timedelta(seconds=1)
        rest = (await app.client.get("/api/groups", params={"cursor": "wrC"},
                                     headers=AUTH)).json()
        assert [g["chat_id"] for g in rest["groups"]] == ["wrD", "wrE"]
        assert rest["next_cursor"] is None
        d = rest["groups"][0]
        assert (d["stage"], d["filled_at"], d["activity"]) == (
            "filling", None, {"source": "fallback", "messages_7d": None, "speakers_7d": None})
        weak = (await app.client.get("/api/groups", params={"stage": "weak"},
                                     headers=AUTH)).json()
        assert [g["chat_id"] for g in weak["groups"]] == ["wrC", "wrE"]
        for params in ({"limit": 501}, {"limit": 0}, {"stage": "zombie"},
                       {"segment": "mars"}):
            assert (await app.client.get("/api/groups", params=params,
                                         headers=AUTH)).status_code == 422, params
        assert (await app.client.get("/api/groups")).status_code == 401
        wrong = {"Authorization": "Bearer not-the-key"}
        assert (await app.client.get("/api/groups", headers=wrong)).status_code == 401


async def test_the_api_is_off_without_a_key(db_url: str) -> None:
    async with serve_app(make_settings(db_url, api_key=None), run_worker=False) as app:
        off = await app.client.get("/api/groups", headers=AUTH)
        assert off.status_code == 503 and "SOPBOT_API_KEY" in off.text



def test_sopbot_groups_prints_the_activity_columns(db_url: str, tmp_path: Path) -> None:
    import asyncio

    async def seeded() -> None:
        database = Database(db_url)
        await seed(database, utcnow())
        await database.dispose()
    asyncio.run(seeded())
    env = str(env_file(tmp_path, db_url))
    weak = CliRunner().invoke(cli, ["groups", "--stage", "weak", "--env-file", env])
    assert weak.exit_code == 0, weak.output
    c, e, owner = weak.stdout.splitlines()
    assert c.startswith("weak") and c.endswith("wrC")
    assert "7d 0 msgs 0 speakers 0 staff [archive]" in c
    assert e.startswith("weak") and "7d activity unknown (no archive" in e and "[fallback]" in e
    assert owner.startswith("owner wangwu on ") and "17 msgs" in owner
    daily = CliRunner().invoke(cli, ["groups", "--stage", "daily", "--env-file", env])
    [a] = daily.stdout.splitlines()
    assert "7d 8 msgs 7 speakers 1 staff [archive]" in a and a.endswith("wrA")
