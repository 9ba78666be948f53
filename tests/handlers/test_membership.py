"""handlers/membership.py on the harness: customer groups and their members are kept from
change_external_chat events, members are marked joined or left (and counted), a customer who
deletes their staff member is churn, and a group that fills or goes leaves its pool."""

from __future__ import annotations

import json

import pytest

from app.funnel import steps
from app.funnel.models import FunnelEvent
from app.groups.models import CustomerGroup, GroupMember, GroupPool
from app.members import service as members
from app.members.models import Member
from tests.handlers.harness import (
    Bot,
    group_created,
    group_dismissed,
    group_joined,
    group_quit,
    group_updated,
    staff_deleted,
)

M = "handlers.membership."


async def _member(bot: Bot, external_userid: str, **fields: object) -> int:
    async with bot.session() as session:
        values: dict[str, object] = dict(external_userid=external_userid, staff_userid="zhangsan",
                                         channel="organic")
        member = await members.create(session, bot.clock.now, "test", **(values | fields))
        return member.id


async def _group(bot: Bot, chat_id: str, segment: str | None = None, **fields: object) -> None:
    async with bot.session() as session:
        session.add(CustomerGroup(chat_id=chat_id, segment=segment, name=f"群{chat_id}",
                                  owner="lisi", status="live", created_at=bot.clock.now,
                                  updated_at=bot.clock.now, **fields))


async def _pool(bot: Bot, segment: str, *chat_ids: str) -> None:
    async with bot.session() as session:
        session.add(GroupPool(segment=segment, config_id=f"cfg-{segment}", qr_code="https://qr",
                              chat_ids=json.dumps(list(chat_ids)), room_name="实体店南方交流群",
                              version=1, stale=False, updated_at=bot.clock.now))


async def _by_id(bot: Bot, member_id: int) -> Member:
    return {m.id: m for m in await bot.rows(Member)}[member_id]


async def test_a_new_group_is_recorded_and_read_from_wecom(bot: Bot) -> None:
    handled = await bot.feed(group_created("wrNew"))
    assert handled.handler == M + "record_new_group"
    [group] = await bot.rows(CustomerGroup)
    assert (group.chat_id, group.status, group.member_count) == ("wrNew", "live", 0)
    [sync] = await bot.outbox()
    assert (sync.key, sync.kind, sync.api, sync.body) == (
        "groupsync:wrNew:new", "group_sync", "externalcontact/groupchat/get",
        {"chat_id": "wrNew"})
    await bot.feed(group_created("wrNew"))  # again (a replay): read once
    assert len(await bot.outbox()) == 1 and len(await bot.rows(CustomerGroup)) == 1


async def test_joiners_are_kept_and_a_known_member_is_marked_joined_once(bot: Bot) -> None:
    await _group(bot, "wrJ")
    member_id = await _member(bot, "wmJoin")
    handled = await bot.feed(group_joined("wrJ", "wmJoin", "wmStranger", "zhangsan", scene=3,
                                          cur_ver="v1"))
    assert handled.handler == M + "record_joined_members"
    rows = {r.userid: r for r in await bot.rows(GroupMember)}
    assert {u: (r.type, r.join_scene, r.left_at) for u, r in rows.items()} == {
        "wmJoin": (2, 3, None), "wmStranger": (2, 3, None), "zhangsan": (1, 3, None)}
    [group] = await bot.rows(CustomerGroup)
    assert (group.member_count, group.member_version) == (3, "v1")
    member = await _by_id(bot, member_id)
    assert (member.status, member.group_chat_id, member.flag) == ("joined", "wrJ", None)
    bot.clock.advance(minutes=5)
    await bot.feed(group_joined("wrJ", "wmJoin", last_ver="v1", cur_ver="v2"))
    joined = [e for e in await bot.rows(FunnelEvent) if e.step == steps.JOINED]
    assert [(e.member_id, e.detail) for e in joined] == [(member_id, "wrJ")]  # counted once
    assert len(await bot.rows(Member)) == 1  # a stranger is no member of ours
    assert await bot.outbox() == []  # no event missed: nothing to read again


@pytest.mark.parametrize(("member_segment", "flag"), [("online", "wrong_segment"),
                                                      (None, "joined_unrouted")])
async def test_a_member_in_a_group_of_another_segment_is_flagged_until_in_their_own(
        bot: Bot, member_segment: str | None, flag: str) -> None:
    await _group(bot, "wrSouth", "shop_south")
    await _group(bot, "wrOnline", "online")
    member_id = await _member(bot, "wmF", segment=member_segment)
    await bot.feed(group_joined("wrSouth", "wmF"))
    assert (await _by_id(bot, member_id)).flag == flag
    if member_segment is not None:
        await bot.feed(group_joined("wrOnline", "wmF"))
        member = await _by_id(bot, member_id)
        assert (member.flag, member.group_chat_id) == (None, "wrOnline")


async def test_a_missed_event_has_the_group_read_again(bot: Bot) -> None:
    await _group(bot, "wrV", member_version="v1")
    await bot.feed(group_joined("wrV", "wmX", last_ver="v2", cur_ver="v3"))
    [sync] = await bot.outbox()
    assert (sync.key, sync.body) == ("groupsync:wrV:ver:v3", {"chat_id": "wrV"})
    assert (await bot.rows(CustomerGroup))[0].member_version == "v3"


async def test_a_leaver_is_kept_as_gone_and_counted(bot: Bot) -> None:
    await _group(bot, "wrQ")
    member_id = await _member(bot, "wmQ")
    await bot.feed(group_joined("wrQ", "wmQ", "wmOther"))
    bot.clock.advance(hours=1)
    handled = await bot.feed(group_quit("wrQ", "wmQ", scene=1), inbox_id=42)
    assert handled.handler == M + "record_left_members"
    rows = {r.userid: r for r in await bot.rows(GroupMember)}
    assert (rows["wmQ"].left_at, rows["wmQ"].quit_scene) == (bot.clock.now, 1)
    assert rows["wmOther"].left_at is None
    assert (await bot.rows(CustomerGroup))[0].member_count == 1
    member = await _by_id(bot, member_id)
    assert (member.status, member.group_chat_id) == ("left", None)
    [left] = [e for e in await bot.rows(FunnelEvent) if e.step == steps.LEFT_GROUP]
    assert (left.member_id, left.detail, left.event_key) == (
        member_id, "wrQ quit_scene 1", f"left_group:{member_id}:42")


async def test_a_leaver_still_in_another_group_stays_joined_there(bot: Bot) -> None:
    await _group(bot, "wrOld")
    await _group(bot, "wrMain")
    member_id = await _member(bot, "wmTwo")
    await bot.feed(group_joined("wrOld", "wmTwo"))
    bot.clock.advance(minutes=1)
    await bot.feed(group_joined("wrMain", "wmTwo"))
    await bot.feed(group_quit("wrMain", "wmTwo"))
    member = await _by_id(bot, member_id)
    assert (member.status, member.group_chat_id) == ("joined", "wrOld")
    assert [e.step for e in await bot.rows(FunnelEvent) if e.step == steps.LEFT_GROUP] == [
        steps.LEFT_GROUP]


@pytest.mark.parametrize("detail", ["change_name", "change_owner", "change_notice"])
async def test_a_changed_name_owner_or_notice_has_the_group_read_again(
        bot: Bot, detail: str) -> None:
    await _group(bot, "wrN")
    handled = await bot.feed(group_updated("wrN", detail), inbox_id=9)
    assert handled.handler == M + "reread_changed_group"
    [sync] = await bot.outbox()
    assert (sync.key, sync.kind, sync.body) == (f"groupsync:wrN:{detail}:9", "group_sync",
                                                {"chat_id": "wrN"})


async def test_a_dismissed_group_leaves_its_pool(bot: Bot) -> None:
    await _group(bot, "wrA", "shop_south")
    await _group(bot, "wrB", "shop_south")
    await _pool(bot, "shop_south", "wrA", "wrB")
    handled = await bot.feed(group_dismissed("wrA"))
    assert handled.handler == M + "record_dismissed_group"
    groups = {g.chat_id: g.status for g in await bot.rows(CustomerGroup)}
    assert groups == {"wrA": "dismissed", "wrB": "live"}
    [pool] = await bot.rows(GroupPool)
    assert (json.loads(pool.chat_ids), pool.version) == (["wrB"], 2)
    [update] = await bot.outbox()
    assert (update.key, update.kind, update.api) == (
        "joinway:shop_south:2", "join_way", "externalcontact/groupchat/update_join_way")
    assert (update.body["config_id"], update.body["chat_id_list"], update.body["state"]) == (
        "cfg-shop_south", ["wrB"], "shop_south")


async def test_a_group_that_fills_leaves_its_pool_and_an_empty_pool_is_told(bot: Bot) -> None:
    ideal = bot.flows.routing.segments["shop_south"].ideal_size
    await _group(bot, "wrFull", "shop_south")
    await _pool(bot, "shop_south", "wrFull")
    async with bot.session() as session:
        session.add_all(GroupMember(chat_id="wrFull", userid=f"wm{n}", type=2,
                                    joined_at=bot.clock.now) for n in range(ideal - 1))
    await bot.feed(group_joined("wrFull", "wmLast"))
    [group] = await bot.rows(CustomerGroup)
    assert (group.member_count, group.filled_at) == (ideal, bot.clock.now)
    # No group with room is left: operators and the owner are told, once.
    told = await bot.outbox(kind="pool_empty")
    assert sorted(t.body["touser"] for t in told) == ["lisi", "op_alice"]
    assert all(t.api == "message/send" for t in told)
    await bot.feed(group_quit("wrFull", "wm1"))
    assert len(await bot.outbox(kind="pool_empty")) == 2


async def test_a_customer_deleting_their_staff_member_is_churn(bot: Bot) -> None:
    member_id = await _member(bot, "wmDel", status="joined")
    other_id = await _member(bot, "wmKeep", status="joined")
    handled = await bot.feed(staff_deleted("wmDel", "zhangsan"), inbox_id=5)
    assert handled.handler == M + "record_deleted_staff"
    await bot.feed(staff_deleted("wmKeep", "lisi"))  # another staff member's friendship
    await bot.feed(staff_deleted("wmNobody", "zhangsan"))  # not a member of ours
    assert (await _by_id(bot, member_id)).status == "left"
    assert (await _by_id(bot, other_id)).status == "joined"
    [churn] = [e for e in await bot.rows(FunnelEvent) if e.step == steps.DELETED_STAFF]
    assert (churn.member_id, churn.detail, churn.event_key) == (
        member_id, "zhangsan", f"deleted_staff:{member_id}:5")
    assert len(await bot.rows(Member)) == 2
