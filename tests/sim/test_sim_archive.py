"""The simulator's chat archive: msgaudit/sim_getchatdata (GetChatData's stand-in), its token
scope, the group-talk scenarios with their msgaudit_notify event, and groupchat/statistic.
Rules on the world directly; the routes through the app in process (no server, no port)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from app.engine.wecom.api_archive import ChatDataPage, SimGetChatData
from app.engine.wecom.xmlutil import parse_xml
from app.faces.sim import archive, groups
from app.faces.sim.access import KEY_HEADER
from app.faces.sim.clock import SHANGHAI, ManualClock
from app.faces.sim.config import SimSettings
from app.faces.sim.embedded import embedded_simulator
from app.faces.sim.server import create_sim_app
from app.faces.sim.state import Call, Reject, ScenarioError, World
from tests.conftest import make_settings
from tests.e2e.sim_server import CORP_ID, SECRET, TinyBot, sim_settings

ARCHIVE_SECRET = "sim-archive-secret-for-tests"
MONDAY_10 = datetime(2025, 3, 3, 10, tzinfo=SHANGHAI).timestamp()


def make_world() -> World:
    settings = SimSettings(_env_file=None, WECOM_CORP_ID=CORP_ID,  # type: ignore[call-arg]
                           WECOM_AGENT_SECRET=SECRET, WECOM_ARCHIVE_SECRET=ARCHIVE_SECRET)
    return World(settings, ManualClock(start=MONDAY_10))


def group_with(world: World, owner: str = "staff01", *customers: str) -> str:
    group = groups.group_create(world, owner, members=list(customers or ["wmA", "wmB"]))
    world.take_callbacks()
    return group.chat_id


def page(world: World, seq: int, limit: int = 1000) -> list[dict[str, Any]]:
    return archive.sim_getchatdata(world, Call({}, {"seq": seq, "limit": limit}))["chatdata"]


def opened(record: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(record["encrypt_chat_msg"]))


def errcode(fn: Any, *args: Any) -> int:
    with pytest.raises(Reject) as caught:
        fn(*args)
    return caught.value.errcode


# --- the archive and its pages ------------------------------------------------------------------


def test_pages_start_after_the_seq_given_and_hold_at_most_limit() -> None:
    world = make_world()
    chat_id = group_with(world)
    for n in range(5):
        world.clock.advance(60)
        archive.post_text(world, chat_id, "wmA" if n % 2 else "staff01", f"第{n}条消息")
    assert [r["seq"] for r in page(world, 0)] == [1, 2, 3, 4, 5]
    assert [r["seq"] for r in page(world, 2, 2)] == [3, 4]
    assert page(world, 5) == []
    first = page(world, 0, 1)[0]
    message = opened(first)
    assert first["msgid"] == message["msgid"] and message["msgid"].endswith("_external")
    assert (first["publickey_ver"], first["encrypt_random_key"]) == (0, "")
    assert message == {"msgid": first["msgid"], "action": "send", "from": "staff01",
                       "tolist": ["wmA", "wmB"], "roomid": chat_id,
                       "msgtime": int((MONDAY_10 + 60) * 1000), "msgtype": "text",
                       "text": {"content": "第0条消息"}}
    # The engine's typed call reads the page as it is.
    assert ChatDataPage.model_validate({"errcode": 0, "chatdata": page(world, 3)}
                                       ).chatdata[0].seq == 4


@pytest.mark.parametrize("body", [{"seq": 0}, {"seq": 0, "limit": 1001}, {"seq": 0, "limit": 0},
                                  {"seq": -1, "limit": 10}, {"seq": "3", "limit": 10}])
def test_bad_page_parameters_are_refused(body: dict[str, Any]) -> None:
    assert errcode(archive.sim_getchatdata, make_world(), Call({}, body)) == 10000


def test_a_poisoned_record_is_served_as_given_between_messages() -> None:
    world = make_world()
    chat_id = group_with(world)
    archive.post_text(world, chat_id, "wmA", "早上好")
    archive.poison(world, "@@not base64@@")
    archive.post_text(world, chat_id, "wmB", "大家好")
    served = page(world, 0)
    assert [r["seq"] for r in served] == [1, 2, 3]
    assert served[1]["encrypt_chat_msg"] == "@@not base64@@"
    assert opened(served[2])["text"]["content"] == "大家好"


def test_posts_follow_the_group_and_the_clock() -> None:
    world = make_world()
    chat_id = group_with(world)
    for sender, at in (("wmStranger", None), ("wmA", MONDAY_10 + 3600), ("wmA", MONDAY_10 - 60)):
        with pytest.raises(ScenarioError):  # not in it; in the future; before joining
            archive.post_text(world, chat_id, sender, "你好", at)
    archive.post_text(world, chat_id, "wmA", "你好", msgid="m1")
    with pytest.raises(ScenarioError):
        archive.post_text(world, chat_id, "wmB", "你好", msgid="m1")


def test_recall_by_the_sender_within_two_minutes_or_by_the_owner() -> None:
    world = make_world()
    chat_id = group_with(world)
    archive.post_text(world, chat_id, "wmA", "加我微信 abc123", msgid="ad")
    archive.post_text(world, chat_id, "wmB", "打错字了", msgid="typo")
    world.clock.advance(60)
    mine = archive.recall(world, "typo")
    assert mine.message is not None
    assert (mine.message["action"], mine.message["msgtype"], mine.message["revoke"],
            mine.message["from"]) == ("recall", "revoke", {"pre_msgid": "typo"}, "wmB")
    with pytest.raises(ScenarioError):
        archive.recall(world, "typo")  # once
    world.clock.advance(300)
    for by in ("wmA", "wmB"):  # too late for the sender; not theirs
        with pytest.raises(ScenarioError):
            archive.recall(world, "ad", by)
    assert archive.recall(world, "ad", "staff01").seq == 4


def test_the_built_in_simulator_takes_the_services_archive_secret(tmp_path: Any) -> None:
    """A service told to read the archive (WECOM_ARCHIVE_SECRET) without WeCom credentials
    reads the built-in simulator's: the simulator accepts that secret, the source is its."""
    url = f"sqlite:///{tmp_path}/sopbot.db"
    reading = make_settings(url, archive_secret=SecretStr("demo-archive-secret"))
    pointed, sim = embedded_simulator(reading)  # type: ignore[misc]
    assert sim.archive_secret.get_secret_value() == "demo-archive-secret"
    assert pointed.archive_source == "simulator"
    assert sim.accepted_secrets()["demo-archive-secret"] == "archive"
    unread, sim = embedded_simulator(make_settings(url))  # type: ignore[misc]
    assert unread.archive_secret is None and sim.archive_secret.get_secret_value()


# --- groupchat/statistic --------------------------------------------------------------------------


def test_statistic_per_owner_in_wecoms_shape() -> None:
    world = make_world()
    busy = group_with(world, "staff01", "wmA", "wmB")
    group_with(world, "staff01", "wmC")
    quiet = group_with(world, "staff02", "wmD")
    archive.post_text(world, busy, "wmA", "有没有临期的饮料？")
    archive.post_text(world, busy, "staff01", "有的，群公告里看")
    world.clock.advance(600)
    groups.group_join(world, ["wmE"], quiet)
    world.clock.advance(86400)  # the next day: Monday's figures exist
    monday = int(MONDAY_10 - 36000)
    answer = archive.groupchat_statistic(world, Call({}, {
        "day_begin_time": monday, "owner_filter": {"userid_list": ["staff02", "staff01"]},
        "order_by": 7}))
    assert answer["total"] == 2 and answer["next_offset"] == 2
    assert answer["items"] == [
        {"owner": "staff01", "data": {"new_chat_cnt": 2, "chat_total": 2, "chat_has_msg": 1,
                                      "new_member_cnt": 5, "member_total": 5,
                                      "member_has_msg": 2, "msg_total": 2,
                                      "migrate_trainee_chat_cnt": 0}},
        {"owner": "staff02", "data": {"new_chat_cnt": 1, "chat_total": 1, "chat_has_msg": 0,
                                      "new_member_cnt": 3, "member_total": 3,
                                      "member_has_msg": 0, "msg_total": 0,
                                      "migrate_trainee_chat_cnt": 0}}]
    by_day = archive.groupchat_statistic_group_by_day(world, Call({}, {
        "day_begin_time": monday, "day_end_time": monday + 86400,
        "owner_filter": {"userid_list": ["staff01"]}}))
    # Today (Tuesday) has no figures yet.
    assert [(i["stat_time"], i["data"]["msg_total"]) for i in by_day["items"]] == [(monday, 2)]
    for body in ({"day_begin_time": monday}, {"day_begin_time": monday, "day_end_time":
                 monday + 31 * 86400, "owner_filter": {"userid_list": ["staff01"]}}):
        assert errcode(archive.groupchat_statistic, world, Call({}, body)) == 40058


# --- over HTTP: token scope, scenarios and their event ----------------------------------------


@dataclass
class Harness:
    client: httpx.AsyncClient
    world: World
    bot: TinyBot

    async def token(self, secret: str) -> str:
        answer = await self.client.get("/cgi-bin/gettoken",
                                       params={"corpid": CORP_ID, "corpsecret": secret})
        return str(answer.json()["access_token"])

    async def call(self, api: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.client.post(f"/cgi-bin/{api}", params={"access_token": token},
                                        json=body)
        return dict(answer.json())

    async def scenario(self, name: str, status: int = 200, **body: Any) -> dict[str, Any]:
        answer = await self.client.post(f"/sim/scenarios/{name}", json=body)
        assert answer.status_code == status, answer.text
        return dict(answer.json())


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    app = create_sim_app(sim_settings(WECOM_ARCHIVE_SECRET=ARCHIVE_SECRET))
    sim, bot = app.state.sim, TinyBot()
    # The callbacks reach the bot in process too.
    await sim.callbacks.client.aclose()
    sim.callbacks.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=bot.app()))
    sim.callbacks.bot_url = "http://bot/wecom/callback"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim",
                                 headers={KEY_HEADER: sim.control_key}) as client:
        yield Harness(client, sim.world, bot)
    await sim.aclose()


async def test_only_the_archive_secrets_token_reads_the_archive(harness: Harness) -> None:
    archive_token, agent_token = await harness.token(ARCHIVE_SECRET), await harness.token(SECRET)
    call = SimGetChatData(seq=0, limit=10)
    assert call.secret == "archive"
    assert await harness.call(call.path, archive_token, call.body() or {}) == {
        "errcode": 0, "errmsg": "ok", "chatdata": []}
    assert (await harness.call(call.path, agent_token, {"seq": 0, "limit": 10})
            )["errcode"] == 48002
    assert (await harness.call("externalcontact/groupchat/list", archive_token,
                               {"limit": 10}))["errcode"] == 48002
    assert (await harness.call("msgaudit/get_permit_user_list", archive_token, {}))["ids"]


async def test_scenarios_fill_the_archive_and_announce_it(harness: Harness) -> None:
    chat_id = (await harness.scenario("group_create", owner="staff01",
                                      members=["wmA", "wmB"]))["chat_id"]
    one = await harness.scenario("group_message", chat_id=chat_id, sender="wmA",
                                 text="请问有没有便利店的冰柜货源？")
    assert one["seq"] == 1 and [c["kind"] for c in one["callbacks"]] == ["msgaudit_notify"]
    assert one["callbacks"][0]["outcome"] == "delivered"
    event = harness.bot.events()[-1]
    assert {k: event[k] for k in ("ToUserName", "FromUserName", "MsgType", "Event")} == {
        "ToUserName": CORP_ID, "FromUserName": "sys", "MsgType": "event",
        "Event": "msgaudit_notify"}
    assert parse_xml(one["callbacks"][0]["plaintext"])["AgentID"] == "1000002"
    harness.world.clock.advance(60)
    now = harness.world.now()
    several = await harness.scenario("group_messages", messages=[
        {"chat_id": chat_id, "sender": "staff01", "text": "有的，下午发链接", "at": now - 30},
        {"chat_id": chat_id, "sender": "wmB", "text": "收到", "msgid": "mine"}])
    assert several["seqs"] == [2, 3] and len(several["callbacks"]) == 1
    # All or none: a bad post leaves the archive as it was.
    await harness.scenario("group_messages", status=409, messages=[
        {"chat_id": chat_id, "sender": "wmA", "text": "好的"},
        {"chat_id": chat_id, "sender": "wmNobody", "text": "广告"}])
    recalled = await harness.scenario("group_recall", msgid="mine")
    poisoned = await harness.scenario("archive_poison")
    assert (recalled["seq"], poisoned["seq"]) == (4, 5)
    # One event per scenario call that added records.
    assert sum(e["Event"] == "msgaudit_notify" for e in harness.bot.events()) == 4
    records = (await harness.client.get("/sim/archive", params={"after": 3})).json()
    assert records["last_seq"] == 5
    assert records["records"][0]["message"]["revoke"] == {"pre_msgid": "mine"}
    assert records["records"][1]["poisoned"] is True
    served = (await harness.call(SimGetChatData.path, await harness.token(ARCHIVE_SECRET),
                                 {"seq": 4, "limit": 1}))["chatdata"]
    assert served[0]["encrypt_chat_msg"] == records["records"][1]["encrypt_chat_msg"]
    with pytest.raises(ValueError):
        json.loads(base64.b64decode(served[0]["encrypt_chat_msg"]))


def test_two_notifies_within_a_second_are_never_the_same_payload() -> None:
    """WeCom never sends two alike (one per 15 s); the service takes a second identical one
    for a retry of the first, so the later one would wake nobody."""
    world = make_world()
    world.take_callbacks()
    archive.notify(world)
    archive.notify(world)
    first, second = world.take_callbacks()
    assert first.plaintext != second.plaintext and "msgaudit_notify" in second.plaintext
