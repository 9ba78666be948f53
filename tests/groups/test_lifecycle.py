"""Group lifecycle: stage and health from joins, quits, 微信客服 activity and confirmed posts;
a zombie group gets one migration plan (invitations from each member's staff member to the
segment's live group, a task for its owner); `sopbot groups --stage weak` lists them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import cli
from app.db import Database, utcnow
from app.flows import load_flows
from app.groups.lifecycle import assess
from app.groups.migration import plan_migrations
from app.groups.models import CustomerGroup, GroupMember, GroupMigration, GroupPool
from app.kf.models import KfConversation
from app.members import service as members
from app.outbox.models import OutboxMessage
from tests.conftest import REPO
from tests.funnel.test_codes import env_file

FLOWS = load_flows(REPO / "sop_flows")


async def _seed(db: Database) -> None:
    now = utcnow()
    old = now - timedelta(days=60)
    async with db.unit_of_work() as session:
        for chat_id, filled in (("wrZombie", old), ("wrYoung", now - timedelta(days=3)),
                                ("wrLive", None)):
            session.add(CustomerGroup(chat_id=chat_id, owner="zhangsan", segment="online",
                                      name=f"网店卖家交流群{chat_id}", member_count=40,
                                      status="live", created_at=old, updated_at=now,
                                      filled_at=filled))
        session.add(GroupPool(segment="online", config_id="jw1", qr_code="https://qr/jw1",
                              chat_ids='["wrLive"]', room_name="网店卖家交流群", version=1,
                              stale=False, updated_at=now))
        for userid, staff, left in (("wmActive", "zhangsan", None), ("wmIdle", "lisi", None),
                                    ("wmGone1", "lisi", now - timedelta(days=2)),
                                    ("wmGone2", "lisi", now - timedelta(days=3))):
            session.add(GroupMember(chat_id="wrZombie", userid=userid, type=2, joined_at=old,
                                    left_at=left))
            await members.create(session, old, "test", external_userid=userid,
                                 staff_userid=staff, channel="organic", segment="online")
        session.add(GroupMember(chat_id="wrLive", userid="wmNew", type=2,
                                joined_at=now - timedelta(days=2)))
        for account in ("wk1", "wk2"):  # one customer active with two kf accounts
            session.add(KfConversation(open_kfid=account, external_userid="wmActive",
                                       last_customer_at=now - timedelta(days=1), answers=0,
                                       misses=0, updated_at=now))


async def test_a_zombie_group_is_found_and_planned_once(db_url: str) -> None:
    db = Database(db_url)
    try:
        await _seed(db)
        async with db.reader() as session:
            found = {h.chat_id: h for h in await assess(session, FLOWS.lifecycle, utcnow())}
        assert (found["wrYoung"].stage, found["wrLive"].stage) == ("strong", "daily")
        zombie = found["wrZombie"]
        assert (zombie.stage, zombie.quits, zombie.active, zombie.joins) == ("weak", 2, 1, 0)
        assert zombie.score < FLOWS.lifecycle.zombie_health
        for _ in range(2):  # the hourly job: planned once
            async with db.unit_of_work() as session:
                planned = await plan_migrations(session, FLOWS, utcnow(), 1000002)
        async with db.reader() as session:
            [plan] = list(await session.scalars(select(GroupMigration)))
            queued = {r.idempotency_key: json.loads(r.request)
                      for r in await session.scalars(select(OutboxMessage))}
        assert planned == []  # the second run found it planned
        assert (plan.chat_id, plan.target_chat_id, json.loads(plan.members)) == (
            "wrZombie", "wrLive", ["wmActive"])  # only the member still active is invited
        invite = queued["migrate-invite:wrZombie:zhangsan"]
        assert (invite["chat_type"], invite["sender"], invite["external_userid"]) == (
            "single", "zhangsan", ["wmActive"])
        assert "https://qr/jw1" in invite["text"]["content"]
        owner = queued["migrate-owner:wrZombie"]
        assert owner["touser"] == "zhangsan" and "请在确认后解散该群" in owner["text"]["content"]
    finally:
        await db.dispose()


async def test_a_group_full_when_first_read_is_strong_only_if_it_is_young(db_url: str) -> None:
    db = Database(db_url)
    now = utcnow()
    try:
        async with db.unit_of_work() as session:
            for chat_id, created in (("wrOldFull", now - timedelta(days=90)),
                                     ("wrNewFull", now - timedelta(days=5))):
                session.add(CustomerGroup(chat_id=chat_id, owner="zhangsan", segment="online",
                                          name=f"网店卖家交流群{chat_id}", member_count=200,
                                          status="live", created_at=created, updated_at=now,
                                          filled_at=now - timedelta(hours=1),
                                          filled_on_arrival=True))
        async with db.reader() as session:
            found = {h.chat_id: h.stage for h in await assess(session, FLOWS.lifecycle, now)}
        assert found["wrNewFull"] == "strong"
        assert found["wrOldFull"] != "strong"  # sopbot met it last hour, but it is 90 days old
    finally:
        await db.dispose()


def test_groups_by_stage_command(db_url: str, tmp_path: Path) -> None:
    import asyncio

    async def seed() -> None:
        db = Database(db_url)
        await _seed(db)
        await db.dispose()
    asyncio.run(seed())
    env = str(env_file(tmp_path, db_url))
    weak = CliRunner().invoke(cli, ["groups", "--stage", "weak", "--env-file", env])
    assert weak.exit_code == 0, weak.output
    [line] = weak.stdout.splitlines()
    assert line.startswith("weak") and "wrZombie" in line and "-2 joins/quits" in line
    assert CliRunner().invoke(cli, ["groups", "--stage", "zombie", "--env-file",
                                    env]).exit_code == 2
