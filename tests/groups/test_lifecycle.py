"""Group lifecycle: stage and health from joins, quits and confirmed posts (no chat archive here;
tests/groups/test_lifecycle_archive.py has it), never from 微信客服 traffic;
stages count from the day a group fills (before that it is filling, never weak); a zombie group
gets one migration plan (invitations from each member's staff member to the segment's live
group, a task for its owner), never a group behind the code or joined lately; one group's
life on a moving clock; `sopbot groups --stage weak` lists them."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from app.engine.db import Database, utcnow
from app.engine.outbox.models import OutboxMessage
from app.faces.cli.main import cli
from app.flows import load_flows
from app.groups import pools
from app.groups import service as groups
from app.groups.lifecycle import assess
from app.groups.migration import plan_migrations
from app.groups.models import CustomerGroup, GroupMember, GroupMigration, GroupPool
from app.kf.models import KfConversation
from app.members import service as members
from tests.conftest import REPO, make_settings
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
        # wrLive never filled: it is filling, whatever its signals.
        assert (found["wrYoung"].stage, found["wrLive"].stage) == ("strong", "filling")
        zombie = found["wrZombie"]
        # wmActive's 微信客服 traffic says nothing about the group: no activity is known.
        assert (zombie.stage, zombie.quits, zombie.joins, zombie.source, zombie.speakers) == (
            "weak", 2, 0, "fallback", None)
        assert zombie.score < FLOWS.lifecycle.zombie_health
        for _ in range(2):  # the hourly job: planned once
            async with db.unit_of_work() as session:
                planned = await plan_migrations(session, FLOWS, utcnow(), 1000002)
        async with db.reader() as session:
            [plan] = list(await session.scalars(select(GroupMigration)))
            queued = {r.idempotency_key: json.loads(r.request)
                      for r in await session.scalars(select(OutboxMessage))}
        assert planned == []  # the second run found it planned
        # Nobody knows who still talks there: every customer still in it is invited.
        assert (plan.chat_id, plan.target_chat_id, json.loads(plan.members)) == (
            "wrZombie", "wrLive", ["wmActive", "wmIdle"])
        invite = queued["migrate-invite:wrZombie:zhangsan"]
        assert (invite["chat_type"], invite["sender"], invite["external_userid"]) == (
            "single", "zhangsan", ["wmActive"])
        assert queued["migrate-invite:wrZombie:lisi"]["external_userid"] == ["wmIdle"]
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
    filling = CliRunner().invoke(cli, ["groups", "--stage", "filling", "--env-file", env])
    assert filling.exit_code == 0, filling.output
    [line] = filling.stdout.splitlines()  # the group that never filled is listed here only
    assert line.startswith("filling") and "wrLive" in line
    assert CliRunner().invoke(cli, ["groups", "--stage", "zombie", "--env-file",
                                    env]).exit_code == 2


async def _stage(db: Database, chat_id: str, when: datetime) -> str:
    async with db.reader() as session:
        return {h.chat_id: h.stage for h in await assess(session, FLOWS.lifecycle, when)}[chat_id]


async def _plan(db: Database, when: datetime) -> list[str]:
    """What the hourly job plans at `when`."""
    async with db.unit_of_work() as session:
        return await plan_migrations(session, FLOWS, when, 1000002)


async def _joined(db: Database, chat_id: str, ids: list[str], when: datetime) -> None:
    """Members join as the membership handler applies it: the group may fill, the pool turn."""
    settings = make_settings(db.url)
    async with db.unit_of_work() as session:
        group = await groups.group_of(session, chat_id, when, read_new=False)
        group.segment, group.owner = "online", "zhangsan"
        group.name = group.name or f"网店卖家交流群{chat_id}"
        await groups.members_joined(session, group, ids, when)
        await pools.after_change(session, group, FLOWS, settings, when)


async def test_one_groups_life_from_creation_through_filling_strong_daily_weak(
        db_url: str) -> None:
    """Filling until it reaches its ideal size (however quiet), strong for strong_days from
    that day, daily, weak only a full window after its strong month; the planner acts then."""
    life, ideal = FLOWS.lifecycle, FLOWS.routing.segments["online"].ideal_size
    db = Database(db_url)
    born = utcnow() - timedelta(days=200)
    try:
        async with db.unit_of_work() as session:
            session.add(GroupPool(segment="online", config_id="jw1", qr_code="https://qr/jw1",
                                  chat_ids='["wrLife"]', room_name="网店卖家交流群", version=1,
                                  stale=False, updated_at=born))
        await _joined(db, "wrLife", ["zhangsan", "wm000"], born)
        for days in (0, 20, 40):  # two people, silent for weeks: still filling, never weak
            assert await _stage(db, "wrLife", born + timedelta(days=days)) == "filling"
            assert await _plan(db, born + timedelta(days=days)) == []
        await _joined(db, "wrNext", ["lisi", "wm900"], born + timedelta(days=44))
        filled = born + timedelta(days=45)
        await _joined(db, "wrLife", [f"wm{n:03d}" for n in range(1, ideal - 1)], filled)
        async with db.reader() as session:
            group = await groups.by_chat_id(session, "wrLife")
            pool = await pools.pool_of(session, "online")
        assert group is not None and pool is not None
        assert (group.member_count, group.filled_at) == (ideal, filled)
        assert pools.chat_ids(pool) == ["wrNext"]  # it left the code when it filled
        strong_end = filled + timedelta(days=life.strong_days)
        full_window = strong_end + timedelta(days=life.window_days)
        timeline = [(filled, "strong"), (strong_end - timedelta(hours=1), "strong"),
                    (strong_end + timedelta(days=1), "daily"),
                    (full_window - timedelta(hours=1), "daily"), (full_window, "weak")]
        for when, stage in timeline:
            assert await _stage(db, "wrLife", when) == stage, when - filled
            if stage != "weak":
                assert await _plan(db, when) == [], when - filled
        assert await _plan(db, full_window) == ["wrLife → wrNext: 0 member(s) invited"]
        assert await _plan(db, full_window + timedelta(days=1)) == []  # once
        assert await _stage(db, "wrNext", full_window) == "filling"  # never weak
    finally:
        await db.dispose()


async def test_a_group_new_members_still_come_into_is_never_weak(db_url: str) -> None:
    """A quiet group (health 0, no join in quiet_days) behind its segment's code, or with a join
    in the window, is daily, not weak: the console's zombie list and the migration planner
    agree, and neither tells an owner to dissolve a group members are seated in. The control
    group is weak and planned."""
    flows = replace(FLOWS, lifecycle=FLOWS.lifecycle.model_copy(update={"quiet_days": 7}))
    db = Database(db_url)
    now = utcnow()
    try:
        async with db.unit_of_work() as session:
            for chat_id, filled in (("wrBehind", 60), ("wrJoined", 60), ("wrZombie", 60),
                                    ("wrOpen", None)):
                session.add(CustomerGroup(
                    chat_id=chat_id, owner="zhangsan", segment="online", name=f"群{chat_id}",
                    member_count=40, status="live", created_at=now - timedelta(days=90),
                    updated_at=now, filled_at=now - timedelta(days=filled) if filled else None))
            session.add(GroupPool(segment="online", config_id="jw1", qr_code="https://qr/jw1",
                                  chat_ids='["wrBehind", "wrOpen"]', room_name="网店卖家交流群",
                                  version=1, stale=False, updated_at=now))
            session.add(GroupMember(chat_id="wrJoined", userid="wmLate", type=2,
                                    joined_at=now - timedelta(days=10)))
        async with db.reader() as session:
            stages = {h.chat_id: h.stage for h in await assess(session, flows.lifecycle, now)}
        assert stages == {"wrBehind": "daily", "wrJoined": "daily", "wrZombie": "weak",
                          "wrOpen": "filling"}
        async with db.unit_of_work() as session:
            planned = await plan_migrations(session, flows, now, 1000002)
        # Into the group the segment's code seats new members in (the first of its pool).
        assert planned == ["wrZombie → wrBehind: 0 member(s) invited"]
    finally:
        await db.dispose()
