"""Group lifecycle on real signals: with the chat archive in use, a group whose customers talk is
healthy and a quiet one weak once the archive covers the whole window (silence it has not seen
is no evidence); a group the archive has never counted, and every group without the archive,
is judged on joins, quits and confirmed posts only, its activity None, and 微信客服 traffic never
counts; the migration plan invites the customers who spoke in the window."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from app.calendar.models import CalendarPost, GroupDay
from app.engine.db import Database
from app.engine.outbox.models import OutboxMessage
from app.flows import load_flows
from app.groups.lifecycle import Health, assess
from app.groups.migration import plan_migrations
from app.groups.models import CustomerGroup, GroupMember, GroupMigration, GroupPool
from app.kf.models import KfConversation
from app.members import service as members
from tests.archive.test_reports import NOW, Talk, feed
from tests.conftest import REPO

FLOWS = load_flows(REPO / "sop_flows")
LIFE = FLOWS.lifecycle  # window_days 14, strong_days 30, zombie_health 30


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


async def seed(db: Database, chat_ids: list[str], customers: int = 40) -> None:
    """Daily-stage groups (filled 90 days ago) of `customers` customers each (wm<chat>_<n>,
    each a member added by lisi), none joined lately; the segment's live group to migrate to."""
    old = NOW - timedelta(days=120)
    async with db.unit_of_work() as session:
        for chat_id in [*chat_ids, "wrTarget"]:
            session.add(CustomerGroup(
                chat_id=chat_id, owner="zhangsan", segment="online", name=f"群{chat_id}",
                member_count=customers, status="live", created_at=old, updated_at=old,
                filled_at=NOW - timedelta(days=90) if chat_id != "wrTarget" else None))
        session.add(GroupPool(segment="online", config_id="jw1", qr_code="https://qr/jw1",
                              chat_ids='["wrTarget"]', room_name="网店卖家交流群", version=1,
                              stale=False, updated_at=old))
        for chat_id in chat_ids:
            for n in range(customers):
                userid = f"wm{chat_id}_{n}"
                session.add(GroupMember(chat_id=chat_id, userid=userid, type=2, joined_at=old))
                await members.create(session, old, "test", external_userid=userid,
                                     staff_userid="lisi", channel="organic", segment="online")


async def health(db: Database, when: datetime = NOW) -> dict[str, Health]:
    async with db.reader() as session:
        return {h.chat_id: h for h in await assess(session, LIFE, when)}


async def test_customers_who_talk_keep_a_group_healthy_and_a_quiet_one_is_weak(
        db: Database) -> None:
    await seed(db, ["wrTalk", "wrQuiet", "wrUnseen"])
    talk = Talk()
    await feed(db, [
        # A quarter of wrTalk's customers spoke this fortnight, twice each.
        *[talk.say("wrTalk", f"wmwrTalk_{n}", n % 12) for n in range(10) for _ in range(2)],
        talk.say("wrTalk", "zhangsan", 1),
        # wrQuiet talked a month ago, and its owner still posts: its customers are silent.
        talk.say("wrQuiet", "wmwrQuiet_1", 30), talk.say("wrQuiet", "wmwrQuiet_2", 29),
        *[talk.say("wrQuiet", "zhangsan", d) for d in range(0, 14, 2)]])
    found = await health(db)
    talking, quiet, unseen = found["wrTalk"], found["wrQuiet"], found["wrUnseen"]
    assert (talking.source, talking.speakers, talking.messages) == ("archive", 10, 20)
    assert talking.score >= LIFE.zombie_health and talking.stage == "daily"
    assert (quiet.source, quiet.speakers, quiet.messages) == ("archive", 0, 0)
    assert (quiet.score, quiet.stage) == (0, "weak")
    # The archive never counted a message of wrUnseen (an owner without a seat, say): its
    # activity is unknown, not zero; joins, quits and posts judge it.
    assert (unseen.source, unseen.speakers, unseen.messages) == ("fallback", None, None)


async def test_silence_the_archive_has_not_seen_whole_makes_no_zombie(db: Database) -> None:
    """A reader new here holds WeCom's last days only: a group whose customers did not speak
    in them is not weak until the archive's figures cover a full window."""
    await seed(db, ["wrQuiet"])
    talk = Talk()
    await feed(db, [talk.say("wrQuiet", "zhangsan", 2), talk.say("wrQuiet", "zhangsan", 0)])
    now = await health(db)
    assert (now["wrQuiet"].source, now["wrQuiet"].score, now["wrQuiet"].stage) == (
        "archive", 0, "daily")
    later = await health(db, NOW + timedelta(days=LIFE.window_days))
    assert later["wrQuiet"].stage == "weak"


async def test_a_stopped_reader_or_a_new_seat_makes_no_zombie(db: Database) -> None:
    """The archive's silence is a group's only while the reader keeps reading, and only over
    the days it has figures of that group."""
    from sqlalchemy import update

    from app.archive.models import ArchiveReader

    await seed(db, ["wrQuiet", "wrNewSeat"])
    talk = Talk()
    await feed(db, [talk.say("wrQuiet", "wmwrQuiet_1", 30), talk.say("wrNewSeat", "zhangsan", 1)])
    async with db.unit_of_work() as session:  # read to the end an hour ago
        await session.execute(update(ArchiveReader).values(
            caught_up_at=NOW - timedelta(hours=1)))
    found = await health(db)
    assert found["wrQuiet"].stage == "weak"
    # wrNewSeat's owner got a seat yesterday: one day of figures is no fortnight of silence.
    assert (found["wrNewSeat"].source, found["wrNewSeat"].stage) == ("archive", "daily")
    async with db.unit_of_work() as session:  # the reader stopped two days ago
        await session.execute(update(ArchiveReader).values(
            caught_up_at=NOW - timedelta(days=2)))
    assert (await health(db))["wrQuiet"].stage == "daily"


async def test_without_the_archive_the_fallback_signals_only(db: Database) -> None:
    """No archive reader here: every group is judged on joins, quits and confirmed posts, and
    its customers' 微信客服 traffic (which says nothing about a group) never counts."""
    await seed(db, ["wrPosts", "wrKf"], customers=10)
    async with db.unit_of_work() as session:
        for n in range(10):  # every customer of wrKf talks to 微信客服 today
            session.add(KfConversation(open_kfid="wk1", external_userid=f"wmwrKf_{n}",
                                       last_customer_at=NOW - timedelta(hours=1), answers=0,
                                       misses=0, updated_at=NOW))
        for d in range(LIFE.window_days):  # wrPosts' owner confirmed every day's post
            day = (NOW - timedelta(days=d)).strftime("%Y-%m-%d")
            session.add(CalendarPost(
                key=f"post:{day}", segment="online", day=day, at=NOW - timedelta(days=d),
                transport="mass", target="zhangsan", posts="morning", status="queued",
                task_status="confirmed"))
            session.add(GroupDay(chat_id="wrPosts", day=day, post_key=f"post:{day}"))
    found = await health(db)
    kf, posts = found["wrKf"], found["wrPosts"]
    assert (kf.source, kf.speakers, kf.messages, kf.score, kf.stage) == (
        "fallback", None, None, 0, "weak")
    # Confirmed posts, the fallback's whole score but the joins: 35 of 60, scaled to 0-100.
    assert (posts.source, posts.confirmed, posts.score, posts.stage) == (
        "fallback", LIFE.window_days, 58, "daily")


async def test_the_migration_invites_the_customers_who_spoke_in_the_window(
        db: Database) -> None:
    await seed(db, ["wrZombie", "wrBlind"], customers=20)
    talk = Talk()
    await feed(db, [
        talk.say("wrZombie", "wmwrZombie_1", 3), talk.say("wrZombie", "wmwrZombie_4", 10),
        talk.say("wrZombie", "wmwrZombie_2", 40),  # before the window: not still active
    ])
    async with db.unit_of_work() as session:  # a customer who spoke has left since
        left = await session.scalar(select(GroupMember).where(
            GroupMember.userid == "wmwrZombie_4"))
        assert left is not None
        left.left_at = NOW - timedelta(days=1)
    found = await health(db)
    assert found["wrZombie"].stage == "weak" and found["wrZombie"].speakers == 2
    assert found["wrBlind"].source == "fallback"
    async with db.unit_of_work() as session:
        planned = await plan_migrations(session, FLOWS, NOW, 1000002)
    async with db.reader() as session:
        plans = {p.chat_id: json.loads(p.members)
                 for p in await session.scalars(select(GroupMigration))}
        invites = {r.idempotency_key: json.loads(r.request)["external_userid"]
                   for r in await session.scalars(select(OutboxMessage))
                   if r.idempotency_key.startswith("migrate-invite:")}
    assert sorted(planned) == ["wrBlind → wrTarget: 20 member(s) invited",
                               "wrZombie → wrTarget: 1 member(s) invited"]
    assert plans["wrZombie"] == ["wmwrZombie_1"]  # spoke in the window and still there
    # Without the archive's word on who talks, every customer still in the group is invited.
    assert plans["wrBlind"] == sorted(f"wmwrBlind_{n}" for n in range(20))
    assert invites["migrate-invite:wrZombie:lisi"] == ["wmwrZombie_1"]
