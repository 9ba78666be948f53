"""Customer groups from real encrypted change_external_chat callbacks (WeCom is the transport
fake): members and counts, a missed event repaired by reading the group again, quits, dismissal
rotating the pool, a member flagged for joining another segment's group, and `sopbot groups`."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from app.engine.db import Database, utcnow
from app.engine.outbox.models import DEAD, SENT, OutboxMessage
from app.engine.outbox.outcomes import Outcome
from app.engine.outbox.store import Claimed
from app.faces.cli.main import cli
from app.flows import load_flows
from app.groups import pools
from app.groups.models import CustomerGroup, GroupMember, GroupPool
from app.groups.pool_alerts import PoolAlerts
from app.groups.sync import list_chat_ids, sync_groups
from app.members import service as members
from app.members.models import Member
from tests.conftest import CORP_ID, REPO, RunningApp, wait_until
from tests.fakes import payloads
from tests.fakes.wecom import FakeWeCom, error
from tests.funnel.test_codes import cli_fake, env_file  # noqa: F401 (fixture)

GET = "externalcontact/groupchat/get"
UPDATE = "externalcontact/groupchat/update_join_way"
FLOWS = load_flows(REPO / "sop_flows")
ROUTING = FLOWS.routing
OWNER = {"userid": "zhangsan", "type": 1, "join_time": 1700000000, "join_scene": 1}


def person(userid: str) -> dict[str, object]:
    return {"userid": userid, "type": 2, "join_time": 1700000000, "join_scene": 3}


def chat(change_type: str = "update", **fields: object) -> str:
    return payloads.external_chat(change_type=change_type, corp_id=CORP_ID, **fields)


async def group(app: RunningApp, chat_id: str) -> CustomerGroup | None:
    async with app.runtime.db.reader() as session:
        return await session.scalar(select(CustomerGroup).where(CustomerGroup.chat_id == chat_id))


async def present(app: RunningApp, chat_id: str) -> list[str]:
    async with app.runtime.db.reader() as session:
        return sorted(await session.scalars(select(GroupMember.userid).where(
            GroupMember.chat_id == chat_id, GroupMember.left_at.is_(None))))


async def until(app: RunningApp, probe) -> None:  # type: ignore[no-untyped-def]
    await wait_until(probe, 10)
    await app.idle()


async def test_a_missed_event_is_repaired_by_reading_the_group_again(
        running: tuple[RunningApp, FakeWeCom]) -> None:
    app, fake = running
    fake.add_group_chat("wrG1", owner="zhangsan", name="实体店南方交流群1",
                        member_list=[OWNER, person("wmA")], member_version="v1")
    joined = chat(chat_id="wrG1", mem_change_list=["wmA"], last_mem_ver="v0", cur_mem_ver="v1")
    assert (await app.post_callback(joined)).status_code == 200

    async def read() -> bool:
        found = await group(app, "wrG1")
        return found is not None and found.synced_at is not None
    await until(app, read)  # a group not seen before is read once, for its name and members
    found = await group(app, "wrG1")
    assert found is not None
    assert (found.segment, found.member_count, found.member_version) == ("shop_south", 2, "v1")

    # wmB's join was never delivered: the next event's LastMemVer is not the version held.
    fake.group_chats["wrG1"].update(member_list=[OWNER, person("wmA"), person("wmB"),
                                                 person("wmC")], member_version="v3")
    later = chat(chat_id="wrG1", mem_change_list=["wmC"], last_mem_ver="v2", cur_mem_ver="v3")
    for _ in range(2):  # WeCom's retry of the same callback reads nothing more
        assert (await app.post_callback(later)).status_code == 200

    async def repaired() -> bool:
        return await present(app, "wrG1") == ["wmA", "wmB", "wmC", "zhangsan"]
    await until(app, repaired)
    found = await group(app, "wrG1")
    assert found is not None and (found.member_count, found.member_version) == (4, "v3")
    assert [c.body for c in fake.calls_to(GET)] == [{"chat_id": "wrG1"}] * 2


async def test_events_in_order_keep_the_count_without_reading_the_group(
        running: tuple[RunningApp, FakeWeCom]) -> None:
    app, fake = running
    fake.add_group_chat("wrG2", owner="zhangsan", name="微商进货交流群1", member_list=[OWNER],
                        member_version="v1")
    await app.post_callback(chat("create", chat_id="wrG2"))
    await until(app, lambda: _synced(app, "wrG2"))
    await app.post_callback(chat(chat_id="wrG2", mem_change_list=["wmA", "wmB"],
                                 last_mem_ver="v1", cur_mem_ver="v2"))
    await app.post_callback(chat(chat_id="wrG2", update_detail="del_member",
                                 mem_change_list=["wmA"], quit_scene=0, last_mem_ver="v2",
                                 cur_mem_ver="v3"))
    await app.idle()
    assert await present(app, "wrG2") == ["wmB", "zhangsan"]
    found = await group(app, "wrG2")
    assert found is not None and (found.member_count, found.segment) == (2, "reseller")
    assert len(fake.calls_to(GET)) == 1  # only the first read
    async with app.runtime.db.reader() as session:
        left = await session.scalar(select(GroupMember).where(GroupMember.userid == "wmA"))
    assert left is not None and left.left_at is not None and left.quit_scene == 0


async def _synced(app: RunningApp, chat_id: str) -> bool:
    found = await group(app, chat_id)
    return found is not None and found.synced_at is not None


async def test_a_dismissed_group_leaves_the_pool(running: tuple[RunningApp, FakeWeCom]) -> None:
    app, fake = running
    for n in (1, 2):
        fake.add_group_chat(f"wrS{n}", owner="zhangsan", name=f"实体店北方交流群{n}",
                            member_list=[OWNER])
    runtime = app.runtime
    report = await sync_groups(runtime.db, runtime.wecom, ROUTING, ["zhangsan"])
    assert report.groups_read == 2 and report.failed == 0
    [line] = [line for line in report.lines if line.startswith("shop_north")]
    assert "created" in line
    [config_id] = fake.join_ways
    way = fake.join_ways[config_id]
    assert (way["chat_id_list"], way["room_base_name"], way["room_base_id"], way["state"]) == (
        ["wrS1", "wrS2"], "实体店北方交流群", 3, "shop_north")
    await app.post_callback(chat("dismiss", chat_id="wrS1"))

    async def rotated() -> bool:
        return way["chat_id_list"] == ["wrS2"]
    await until(app, rotated)
    assert fake.last(UPDATE).body["auto_create_room"] == 1
    # Segments without a group say what to do; a second sync changes nothing.
    again = await sync_groups(runtime.db, runtime.wecom, ROUTING, ["zhangsan"])
    assert again.groups_read == 0
    assert any(line.startswith("shop_north") and "unchanged" in line for line in again.lines)
    assert any(line.startswith("reseller") and "create a customer group named 微商进货交流群1"
               in line for line in again.lines)


async def test_a_routed_member_joining_another_segments_group_is_flagged(
        running: tuple[RunningApp, FakeWeCom]) -> None:
    app, fake = running
    fake.add_group_chat("wrR1", owner="zhangsan", name="微商进货交流群1", member_list=[OWNER])
    async with app.runtime.db.unit_of_work() as session:
        await members.create(session, utcnow(), "test", external_userid="wmShop",
                             staff_userid="zhangsan", channel="organic", segment="shop_south",
                             status="routed")
    await app.post_callback(chat("create", chat_id="wrR1"))
    await until(app, lambda: _synced(app, "wrR1"))
    await app.post_callback(chat(chat_id="wrR1", mem_change_list=["wmShop"], join_scene=0))
    await app.idle()
    async with app.runtime.db.reader() as session:
        member = await session.scalar(select(Member))
    assert member is not None
    assert (member.flag, member.status, member.group_chat_id) == ("wrong_segment", "joined",
                                                                  "wrR1")


async def test_an_overtaken_join_way_update_is_followed_by_the_current_list(db_url: str) -> None:
    db = Database(db_url)
    now = utcnow()
    try:
        async with db.unit_of_work() as session:
            session.add(CustomerGroup(chat_id="wrB", segment="online", name="网店卖家交流群2",
                                      owner="zhangsan", member_count=1, status="live",
                                      created_at=now, updated_at=now))
            session.add(GroupPool(segment="online", config_id="jw1", qr_code="https://qr",
                                  chat_ids='["wrB"]', room_name="网店卖家交流群", version=3,
                                  stale=False, updated_at=now))
        stale = pools.update_call(GroupPool(segment="online", config_id="jw1",
                                            room_name="网店卖家交流群"), ["wrA", "wrB"])
        current = pools.update_call(GroupPool(segment="online", config_id="jw1",
                                              room_name="网店卖家交流群"), ["wrB"])
        for call, outcome, expected_rows in ((current, SENT, 0), (stale, SENT, 1),
                                             (current, DEAD, 1)):
            async with db.unit_of_work() as session:
                await pools.join_way_settled(session, _claimed(call), Outcome(outcome, {}), now)
                await pools.settle_pools(session, now, PoolAlerts(
                    ROUTING, FLOWS.lifecycle.pool_empty, None, frozenset()))
            async with db.reader() as session:
                rows = list(await session.scalars(select(OutboxMessage)))
            assert len(rows) == expected_rows
        [row] = rows
        assert row.idempotency_key == "joinway:online:4"
        assert json.loads(row.request)["chat_id_list"] == ["wrB"]
        # The failed update leaves the pool stale: the next change sends the list again.
        async with db.unit_of_work() as session:
            assert await pools.rebalance(session, "online", now) is True
            assert await pools.rebalance(session, "online", now) is False
    finally:
        await db.dispose()


def _claimed(call: pools.UpdateJoinWay) -> Claimed:
    now = utcnow()
    return Claimed(id=1, idempotency_key="joinway:online:2", kind=pools.JOIN_WAY_KIND,
                   api=call.path, request=json.dumps(call.stored()), priority=5, deadline=None,
                   rate_key="api:x", attempts=1, in_flight_at=None, created_at=now,
                   lease_until=now + timedelta(seconds=30), lease="lease")


async def test_the_group_list_is_read_per_owner_when_wecom_refuses_the_whole_list() -> None:
    fake = FakeWeCom()
    fake.add_group_chat("wrZ1", owner="zhangsan")
    fake.add_group_chat("wrL1", owner="lisi")
    fake.script("externalcontact/groupchat/list", error(81017, "too many people"))
    assert await list_chat_ids(fake.wecom_client(), ["lisi", "zhangsan"]) == ["wrZ1", "wrL1"]
    bodies = [c.body for c in fake.calls_to("externalcontact/groupchat/list")]
    assert "owner_filter" not in bodies[0]
    assert bodies[1]["owner_filter"] == {"userid_list": ["lisi", "zhangsan"]}


def test_the_commands_sync_and_list_the_pools(db_url: str, tmp_path: Path,
                                              cli_fake: FakeWeCom) -> None:  # noqa: F811
    cli_fake.add_group_chat("wrO1", owner="zhangsan", name="网店卖家交流群1", member_list=[OWNER])
    cli_fake.add_group_chat("wrX1", owner="zhangsan", name="老客户群")
    env = str(env_file(tmp_path, db_url))
    synced = CliRunner().invoke(cli, ["groups", "sync", "--env-file", env])
    assert synced.exit_code == 0, synced.output
    assert "groups read from WeCom: 2" in synced.stdout
    assert "1 group(s) match no segment's room_name: 老客户群" in synced.stdout
    [qr] = [way["qr_code"] for way in cli_fake.join_ways.values()]
    assert f"online           created {qr} (1 group(s))" in synced.stdout
    listed = CliRunner().invoke(cli, ["groups", "list", "--env-file", env])
    assert listed.exit_code == 0, listed.output
    assert f"online (网店群), ideal 180: {qr}" in listed.stdout
    assert re.search(r"^  \* 网店卖家交流群1 +1/180 live wrO1$", listed.stdout, re.MULTILINE)


async def test_an_older_answer_never_undoes_a_later_join_nor_revives_a_dismissed_group(
        db_url: str) -> None:
    from app.engine.wecom.api_contact import GroupChatInfo
    from app.groups import service

    db = Database(db_url)
    asked = utcnow()
    try:
        async with db.unit_of_work() as session:
            group = await service.group_of(session, "wrOld", asked, read_new=False)
            await service.members_joined(session, group, ["wmEarly"], asked - timedelta(hours=1))
            # wmLate joined after the read was queued; the group was dismissed after it too.
            await service.members_joined(session, group, ["wmLate"], asked + timedelta(seconds=5))
            # wmGone left after the read was queued; WeCom's (older) answer still lists them.
            await service.members_joined(session, group, ["wmGone"], asked - timedelta(hours=2))
            await service.members_left(session, group, ["wmGone"], asked + timedelta(seconds=3))
            await service.dismissed(session, group, asked + timedelta(seconds=6))
        answer = GroupChatInfo(chat_id="wrOld", name="网店卖家交流群9", owner="zhangsan",
                               member_list=[{"userid": "zhangsan", "type": 1},
                                            {"userid": "wmGone", "type": 2}],
                               member_version="v9")
        async with db.unit_of_work() as session:
            group = await service.apply_snapshot(session, answer, asked + timedelta(seconds=9),
                                                 ROUTING, asked_at=asked)
        async with db.reader() as session:
            rows = {r.userid: r.left_at is None for r in await session.scalars(select(GroupMember))}
            group = await session.scalar(select(CustomerGroup))
        assert rows == {"wmEarly": False, "wmLate": True, "zhangsan": True, "wmGone": False}
        assert group is not None
        assert (group.status, group.member_count, group.segment) == ("dismissed", 2, "online")
        assert group.member_version is None  # events came after the read: its version is old
    finally:
        await db.dispose()


async def test_sync_goes_on_when_one_group_cannot_be_read(
        running: tuple[RunningApp, FakeWeCom]) -> None:
    app, fake = running
    fake.add_group_chat("wrOut", owner="outsider", name="实体店南方交流群7")
    fake.add_group_chat("wrIn", owner="zhangsan", name="实体店南方交流群1", member_list=[OWNER])
    fake.script(GET, error(84061, "owner not in the app's scope"))  # the first read: wrOut
    runtime = app.runtime
    report = await sync_groups(runtime.db, runtime.wecom, ROUTING, ["zhangsan"])
    assert report.failed == 1 and report.groups_read == 1
    assert report.lines[0].startswith("group wrOut failed:")
    assert any(line.startswith("shop_south") and "created" in line for line in report.lines)
    # The next sync reads the group that failed (it answers now) and puts it behind the code.
    again = await sync_groups(runtime.db, runtime.wecom, ROUTING, ["zhangsan"])
    assert (again.failed, again.groups_read) == (0, 1)
    [config_id] = fake.join_ways
    assert fake.join_ways[config_id]["chat_id_list"] == ["wrIn", "wrOut"]
    # A join way whose update got lost in WeCom is repaired by the next sync.
    fake.join_ways[config_id]["chat_id_list"] = ["wrGone"]
    third = await sync_groups(runtime.db, runtime.wecom, ROUTING, ["zhangsan"])
    assert any(line.startswith("shop_south") and "updated" in line for line in third.lines)
    assert fake.join_ways[config_id]["chat_id_list"] == ["wrIn", "wrOut"]


async def test_a_flag_is_cleared_when_the_member_joins_a_group_of_their_segment(
        running: tuple[RunningApp, FakeWeCom]) -> None:
    app, fake = running
    fake.add_group_chat("wrWrong", owner="zhangsan", name="微商进货交流群1", member_list=[OWNER])
    fake.add_group_chat("wrRight", owner="zhangsan", name="实体店南方交流群1",
                        member_list=[OWNER])
    async with app.runtime.db.unit_of_work() as session:
        await members.create(session, utcnow(), "test", external_userid="wmMove",
                             staff_userid="zhangsan", channel="organic", segment="shop_south",
                             status="routed")
    for chat_id in ("wrWrong", "wrRight"):
        await app.post_callback(chat("create", chat_id=chat_id))
        await until(app, lambda chat_id=chat_id: _synced(app, chat_id))
    flags = []
    for chat_id in ("wrWrong", "wrRight"):
        await app.post_callback(chat(chat_id=chat_id, mem_change_list=["wmMove"], join_scene=0))
        await app.idle()
        async with app.runtime.db.reader() as session:
            flags.append((await session.scalar(select(Member))).flag)  # type: ignore[union-attr]
    assert flags == ["wrong_segment", None]


async def test_churn_is_counted_and_newcomers_are_listed_per_group_and_day(
        running: tuple[RunningApp, FakeWeCom]) -> None:
    from app.funnel.models import FunnelEvent
    from app.groups.newcomers import SHANGHAI

    app, fake = running
    fake.add_group_chat("wrN1", owner="zhangsan", name="网店卖家交流群1", member_list=[OWNER],
                        member_version="v1")
    async with app.runtime.db.unit_of_work() as session:
        for userid in ("wmStay", "wmGo"):
            await members.create(session, utcnow(), "test", external_userid=userid,
                                 staff_userid="zhangsan", channel="organic", segment="online",
                                 identity_type="online_shop", region="浙江", status="routed")
    await app.post_callback(chat("create", chat_id="wrN1"))
    await until(app, lambda: _synced(app, "wrN1"))
    await app.post_callback(chat(chat_id="wrN1", mem_change_list=["wmStay", "wmGo", "wmOther"],
                                 join_scene=3, last_mem_ver="v1", cur_mem_ver="v2"))
    await app.post_callback(chat(chat_id="wrN1", update_detail="del_member",
                                 mem_change_list=["wmGo"], quit_scene=0, last_mem_ver="v2",
                                 cur_mem_ver="v3"))
    # Group events are ordered per group, contact events per customer: nothing orders the two,
    # so the join is handled before the customer deletes the staff member, as in life.
    await app.idle()
    await app.post_callback(payloads.external_contact(
        change_type="del_follow_user", corp_id=CORP_ID, external_user_id="wmStay",
        user_id="zhangsan"))
    await app.idle()
    async with app.runtime.db.reader() as session:
        steps = sorted(e.step for e in await session.scalars(select(FunnelEvent)))
        statuses = {m.external_userid: (m.status, m.group_chat_id)
                    for m in await session.scalars(select(Member))}
    assert steps == ["deleted_staff", "joined", "joined", "left_group"]
    assert statuses == {"wmStay": ("left", "wrN1"), "wmGo": ("left", None)}
    from app.groups.newcomers import lines, newcomers

    today = utcnow().astimezone(SHANGHAI).date()
    async with app.runtime.db.reader() as session:
        out = lines(await newcomers(session, today, "online"), today,
                    app.runtime.flows.verify.identity_types)
    assert out[0] == f"网店卖家交流群1 (online) wrN1: 2 newcomer(s) on {today:%Y-%m-%d}"
    assert [line.split()[1:] for line in out[1:]] == [
        ["wmStay", "网店", "浙江"], ["wmOther", "not", "a", "member", "of", "the", "funnel"]]


def test_the_newcomers_command(db_url: str, tmp_path: Path,
                               cli_fake: FakeWeCom) -> None:  # noqa: F811
    env = str(env_file(tmp_path, db_url))
    listed = CliRunner().invoke(cli, ["groups", "newcomers", "--day", "2026-11-30",
                                      "--env-file", env])
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.strip() == "no newcomers on 2026-11-30"
    bad = CliRunner().invoke(cli, ["groups", "newcomers", "--day", "yesterday", "--env-file", env])
    assert bad.exit_code == 2 and "is not a date" in bad.output


def test_the_templates_commands(db_url: str, tmp_path: Path,
                                cli_fake: FakeWeCom) -> None:  # noqa: F811
    env = str(env_file(tmp_path, db_url))
    cli_fake.script("externalcontact/group_welcome_template/add", error(41055, "too many"))
    synced = CliRunner().invoke(cli, ["templates", "sync", "--env-file", env])
    assert synced.exit_code == 1
    lines = synced.stdout.splitlines()
    assert lines[0].startswith("failed    shop_north: ") and "41055" in lines[0]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["created", s] for s in ("shop_south", "reseller", "online", "online_douyin")]
    assert "1 template(s) failed" in synced.stderr
    again = CliRunner().invoke(cli, ["templates", "sync", "--env-file", env])
    assert again.exit_code == 0 and again.stdout.splitlines()[0].startswith("created   shop_north")
    listed = CliRunner().invoke(cli, ["templates", "list", "--env-file", env])
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [
        "online", "online_douyin", "reseller", "shop_north", "shop_south"]


async def test_a_new_name_or_notice_is_read_from_wecom(
        running: tuple[RunningApp, FakeWeCom]) -> None:
    app, fake = running
    fake.add_group_chat("wrNote", owner="zhangsan", name="网店卖家交流群5", member_list=[OWNER])
    await app.post_callback(chat("create", chat_id="wrNote"))
    await until(app, lambda: _synced(app, "wrNote"))
    fake.group_chats["wrNote"].update(notice="本周六直播选品会", name="网店卖家交流群5（满）")
    for detail in ("change_notice", "change_name"):
        await app.post_callback(chat(chat_id="wrNote", update_detail=detail))

    async def updated() -> bool:
        found = await group(app, "wrNote")
        return found is not None and found.notice == "本周六直播选品会" \
            and found.name == "网店卖家交流群5（满）"
    await until(app, updated)

    async def read_for_each() -> bool:  # the first read may already show both changes
        return len(fake.calls_to(GET)) >= 3
    await until(app, read_for_each)
    assert len(fake.calls_to(GET)) == 3  # the create's read and one per change, no more


async def test_a_read_marks_a_group_filled_and_only_the_first_read_says_it_came_full(
        db_url: str) -> None:
    """apply_snapshot decides `filled` itself: a group full on its first read needs no
    onboarding (filled_on_arrival); one a later read finds full filled here."""
    from app.engine.wecom.api_contact import GroupChatInfo
    from app.groups import service

    online = ROUTING.segments["online"].model_copy(update={"ideal_size": 2})
    routing = ROUTING.model_copy(update={"segments": {**ROUTING.segments, "online": online}})
    owner = {"userid": "zhangsan", "type": 1}

    def info(chat_id: str, *members: str) -> GroupChatInfo:
        return GroupChatInfo(chat_id=chat_id, name="网店卖家交流群1", owner="zhangsan",
                             member_list=[owner, *({"userid": m, "type": 2} for m in members)])

    db = Database(db_url)
    now = utcnow()
    try:
        async with db.unit_of_work() as session:
            await service.apply_snapshot(session, info("wrFull", "wmA"), now, routing, now)
            await service.apply_snapshot(session, info("wrLater"), now, routing, now)
        async with db.unit_of_work() as session:
            later = now + timedelta(minutes=1)
            await service.apply_snapshot(session, info("wrLater", "wmB"), later, routing, later)
        async with db.reader() as session:
            groups = {g.chat_id: g for g in await session.scalars(select(CustomerGroup))}
        assert groups["wrFull"].filled_at == now and groups["wrFull"].filled_on_arrival
        assert groups["wrLater"].filled_at == later
        assert not groups["wrLater"].filled_on_arrival
    finally:
        await db.dispose()
