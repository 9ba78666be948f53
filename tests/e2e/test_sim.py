"""The WeCom simulator as a real HTTP server, driven with plain httpx (127.0.0.1 only)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.engine.wecom.xmlutil import parse_xml
from tests.e2e.sim_server import (
    AES_KEY,
    CORP_ID,
    SECRET,
    RunningSim,
    TinyBot,
    running_bot,
    running_sim,
)

REPO = Path(__file__).resolve().parents[2]
KF = "wkSimKf0000001"


@pytest.fixture
async def sim() -> AsyncIterator[RunningSim]:
    async with running_sim() as running:
        yield running


@pytest.fixture
async def bot(sim: RunningSim) -> AsyncIterator[TinyBot]:
    async with running_bot(TinyBot(), sim) as tiny:
        yield tiny


async def welcome(sim: RunningSim, token: str, code: str) -> dict:
    return await sim.call("externalcontact/send_welcome_msg",
                          {"welcome_code": code, "text": {"content": "欢迎加入"}}, token)


# --- tokens and welcome codes ------------------------------------------------------------------


async def test_welcome_code_is_single_use_and_expires(sim: RunningSim, bot: TinyBot) -> None:
    token = await sim.token()
    added = await sim.scenario("friend_add", userid="staff01", state="ch_parent")
    [callback] = added["callbacks"]
    assert callback["outcome"] == "delivered"
    event = bot.events()[0]
    assert (event["ChangeType"], event["State"]) == ("add_external_contact", "ch_parent")
    assert event["WelcomeCode"] == added["welcome_code"]
    assert (await welcome(sim, token, added["welcome_code"]))["errcode"] == 0
    assert (await welcome(sim, token, added["welcome_code"]))["errcode"] == 41051
    late = await sim.scenario("friend_add", userid="staff01")
    await sim.client.post("/sim/clock", json={"advance_s": 25})
    assert (await welcome(sim, token, late["welcome_code"]))["errcode"] == 41050


async def test_token_is_reused_until_forced_out(sim: RunningSim) -> None:
    token = await sim.token()
    assert await sim.token() == token
    assert (await sim.call("externalcontact/get_corp_tag_list", token=token))["errcode"] == 0
    forced = await sim.client.post("/sim/tokens/invalidate", json={"errcode": 42001})
    assert forced.json()["invalidated"] == 1
    assert (await sim.call("externalcontact/get_corp_tag_list", token=token))["errcode"] == 42001
    fresh = await sim.token()
    assert fresh != token
    assert (await sim.call("externalcontact/get_corp_tag_list", token=fresh))["errcode"] == 0


async def test_wecom_conventions_for_bad_requests(sim: RunningSim) -> None:
    assert (await sim.call("message/send"))["errcode"] == 41001
    assert (await sim.call("message/send", token="made-up"))["errcode"] == 40014
    wrong = await sim.client.get("/cgi-bin/gettoken",
                                 params={"corpid": CORP_ID, "corpsecret": "wrong"})
    assert (wrong.status_code, wrong.json()["errcode"]) == (200, 40001)
    token = await sim.token()
    broken = await sim.client.post("/cgi-bin/message/send", params={"access_token": token},
                                   content=b"{not json")
    assert broken.json()["errcode"] == 47001
    missing = await sim.call("externalcontact/add_contact_way", {"scene": 2}, token)
    assert missing["errcode"] == 40058 and "hint" in missing["errmsg"]
    unknown = await sim.client.post("/cgi-bin/no/such/api", params={"access_token": token})
    assert unknown.status_code == 404


# --- faults ------------------------------------------------------------------------------------


async def test_injected_errcode_http_status_delay_and_drop(sim: RunningSim) -> None:
    token = await sim.token()
    api = "externalcontact/get_corp_tag_list"
    await sim.client.post("/sim/faults", json={"path": api, "errcode": -1, "count": 1})
    assert (await sim.call(api, token=token))["errcode"] == -1
    assert (await sim.call(api, token=token))["errcode"] == 0
    await sim.client.post("/sim/faults", json={"path": api, "http_status": 502, "count": 1})
    gateway = await sim.client.post(f"/cgi-bin/{api}", params={"access_token": token}, json={})
    assert gateway.status_code == 502
    await sim.client.post("/sim/faults", json={"path": "*", "delay_s": 1.0, "count": 1})
    with pytest.raises(httpx.ReadTimeout):
        await sim.client.post(f"/cgi-bin/{api}", params={"access_token": token}, json={},
                              timeout=0.3)
    await sim.client.post("/sim/faults", json={"path": api, "drop": True, "count": 1})
    with pytest.raises(httpx.TransportError):
        await sim.client.post(f"/cgi-bin/{api}", params={"access_token": token}, json={})
    assert (await sim.call(api, token=token))["errcode"] == 0
    faults = (await sim.client.get("/sim/faults")).json()["faults"]
    assert [f["applied"] for f in faults] == [1, 1, 1, 1]
    assert (await sim.client.delete("/sim/faults")).json() == {"cleared": 4}


async def test_a_drop_after_the_call_leaves_its_effect(sim: RunningSim, bot: TinyBot) -> None:
    token = await sim.token()
    code = (await sim.scenario("friend_add", userid="staff01"))["welcome_code"]
    await sim.client.post("/sim/faults", json={"path": "externalcontact/send_welcome_msg",
                                               "drop": True, "after": True, "count": 1})
    with pytest.raises(httpx.TransportError):
        await welcome(sim, token, code)
    assert (await welcome(sim, token, code))["errcode"] == 41051  # it had been sent


async def test_requests_are_recorded_without_credentials(sim: RunningSim) -> None:
    token = await sim.token()
    since = (await sim.client.get("/sim/requests")).json()["last_seq"]
    await sim.call("externalcontact/mark_tag", {"userid": "staff01", "external_userid": "wmX",
                                                "add_tag": ["t"]}, token)
    await sim.client.post("/sim/faults", json={"path": "kf/*", "errcode": 45009, "count": 1})
    await sim.call("kf/send_msg", {"touser": "wmX"}, token)
    listed = (await sim.client.get("/sim/requests", params={"since": since})).json()
    mark, kf_call = listed["requests"]
    assert mark["path"] == "externalcontact/mark_tag" and mark["method"] == "POST"
    assert mark["body"]["external_userid"] == "wmX" and mark["errcode"] == 84061
    assert mark["query"] == {} and token not in str(listed)
    assert kf_call["errcode"] == 45009 and kf_call["fault"]["errcode"] == 45009
    only = (await sim.client.get("/sim/requests", params={"path": "kf/send_msg"})).json()
    assert [r["seq"] for r in only["requests"]] == [kf_call["seq"]]
    gettoken = (await sim.client.get("/sim/requests", params={"path": "gettoken"})).json()
    assert SECRET not in str(gettoken) and gettoken["requests"][0]["query"] == {"corpid": CORP_ID}
    await sim.client.delete("/sim/requests")
    assert (await sim.client.get("/sim/requests")).json()["requests"] == []


# --- callbacks: retries, passive replies, no callbacks for API changes --------------------------


async def test_a_slow_bot_gets_the_same_payload_again(sim: RunningSim) -> None:
    slow = TinyBot(slow_first=1, slow_s=1.0)  # the simulator waits 0.5 s in these tests
    async with running_bot(slow, sim):
        result = await sim.scenario("friend_add", userid="staff01")
    [callback] = result["callbacks"]
    assert callback["outcome"] == "delivered"
    assert [a["error"] for a in callback["attempts"]] == ["timeout", None]
    assert len(slow.received) == 2
    first, second = slow.received
    assert first["plaintext"] == second["plaintext"]
    assert first["nonce"] != second["nonce"]


async def test_a_failing_bot_gets_three_attempts(sim: RunningSim) -> None:
    async with running_bot(TinyBot(status=500), sim) as failing:
        result = await sim.scenario("kf_message", open_kfid=KF, external_userid="wmK", text="hi")
    [callback] = result["callbacks"]
    assert callback["outcome"] == "failed"
    assert [a["status"] for a in callback["attempts"]] == [500, 500, 500]
    assert len(failing.received) == 3
    assert (await sim.client.get("/sim/callbacks")).json()["callbacks"][-1]["outcome"] == "failed"


async def test_app_text_records_the_decrypted_passive_reply(sim: RunningSim) -> None:
    async with running_bot(TinyBot(reply="已收到"), sim) as replying:
        result = await sim.scenario("app_text", from_user="operator1", content="/help")
    assert "<Content><![CDATA[已收到]]></Content>" in result["reply"]
    message = replying.events()[0]
    assert (message["MsgType"], message["Content"], message["AgentID"]) == ("text", "/help",
                                                                            "1000002")
    assert message["MsgId"] == result["msg_id"]


async def test_api_changes_emit_no_callbacks(sim: RunningSim, bot: TinyBot) -> None:
    token = await sim.token()
    customer = (await sim.scenario("friend_add", userid="staff01"))["external_userid"]
    chat_id = (await sim.scenario("group_create", owner="staff01"))["chat_id"]
    before = len(bot.received)
    tag = await sim.call("externalcontact/add_corp_tag",
                         {"group_name": "渠道", "tag": [{"name": "抖音"}]}, token)
    tag_id = tag["tag_group"]["tag"][0]["id"]
    calls = [("externalcontact/mark_tag", {"userid": "staff01", "external_userid": customer,
                                           "add_tag": [tag_id]}),
             ("externalcontact/add_contact_way", {"type": 1, "scene": 2, "user": ["staff01"],
                                                  "state": "dy_slot1"}),
             ("externalcontact/groupchat/add_join_way", {"scene": 2, "chat_id_list": [chat_id],
                                                         "state": "seg"})]
    for api, body in calls:
        assert (await sim.call(api, body, token))["errcode"] == 0
    await sim.sim.callbacks.drain()
    assert len(bot.received) == before
    assert len(sim.sim.callbacks.records) == 2


async def test_wait_false_answers_before_delivery(sim: RunningSim, bot: TinyBot) -> None:
    result = await sim.scenario("group_create", owner="staff01", wait=False)
    assert result["callbacks"][0]["outcome"] == "pending"
    await sim.sim.callbacks.drain()
    assert bot.events()[0]["ChangeType"] == "create"


async def test_verify_url_checks_the_echo(sim: RunningSim, bot: TinyBot) -> None:
    assert (await sim.client.post("/sim/verify_url")).json()["ok"] is True


# --- kf and mass send over HTTP -------------------------------------------------------------------


async def test_kf_sixth_answer_fails_later_with_an_event(sim: RunningSim, bot: TinyBot) -> None:
    token = await sim.token()
    await sim.scenario("kf_message", open_kfid=KF, external_userid="wmK", text="价格")
    kf_token = bot.events()[0]["Token"]
    synced = await sim.call("kf/sync_msg", {"token": kf_token, "open_kfid": KF}, token)
    assert synced["msg_list"][0]["text"]["content"] == "价格"
    answer = {"touser": "wmK", "open_kfid": KF, "msgtype": "text", "text": {"content": "好"}}
    results = [await sim.call("kf/send_msg", answer, token) for _ in range(6)]
    assert [r["errcode"] for r in results] == [0] * 6
    await sim.sim.callbacks.drain()
    assert bot.events()[-1]["Event"] == "kf_msg_or_event"
    later = await sim.call("kf/sync_msg", {"cursor": synced["next_cursor"],
                                           "token": bot.events()[-1]["Token"]}, token)
    [failure] = later["msg_list"]
    assert failure["event"]["fail_msgid"] == results[-1]["msgid"]
    assert failure["event"]["fail_type"] == 6


async def test_mass_message_is_confirmed_once_per_group_per_day(sim: RunningSim,
                                                                bot: TinyBot) -> None:
    token = await sim.token()
    chat_id = (await sim.scenario("group_create", owner="staff01"))["chat_id"]
    body = {"chat_type": "group", "sender": "staff01", "chat_id_list": [chat_id],
            "text": {"content": "晚安"}}
    first = (await sim.call("externalcontact/add_msg_template", body, token))["msgid"]
    second = (await sim.call("externalcontact/add_msg_template", body, token))["msgid"]
    for msgid, status in ((first, 1), (second, 3)):
        confirmed = await sim.scenario("confirm_mass_task", msgid=msgid, userid="staff01")
        assert confirmed["results"] == {chat_id: status}
        result = await sim.call("externalcontact/get_groupmsg_send_result",
                                {"msgid": msgid, "userid": "staff01"}, token)
        assert result["send_list"][0]["status"] == status


async def test_group_join_event_shape(sim: RunningSim, bot: TinyBot) -> None:
    chat_id = (await sim.scenario("group_create", owner="staff01"))["chat_id"]
    joined = await sim.scenario("group_join", chat_id=chat_id, external_userid="wmJ",
                                join_scene=0)
    event = bot.events()[-1]
    assert (event["Event"], event["ChangeType"], event["UpdateDetail"]) == (
        "change_external_chat", "update", "add_member")
    assert (event["JoinScene"], event["MemChangeCnt"], event["MemChangeList"]) == (
        "0", "1", ["wmJ"])
    assert event["CurMemVer"] == joined["member_version"]


async def test_media_upload_is_multipart_with_size_rules(sim: RunningSim) -> None:
    token = await sim.token()
    params = {"access_token": token, "type": "image"}
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    ok = await sim.client.post("/cgi-bin/media/upload", params=params,
                               files={"media": ("a.png", png, "image/png")})
    assert ok.json()["errcode"] == 0 and isinstance(ok.json()["created_at"], str)
    tiny = await sim.client.post("/cgi-bin/media/upload", params=params,
                                 files={"media": ("a.png", b"\x89PNG", "image/png")})
    assert tiny.json()["errcode"] == 40006
    recorded = (await sim.client.get("/sim/requests", params={"path": "media/upload"})).json()
    assert recorded["requests"][0]["upload"] == {"filename": "a.png",
                                                 "content_type": "image/png", "size": 72}


async def test_webhook_needs_a_known_key_and_no_token(sim: RunningSim) -> None:
    text = {"msgtype": "text", "text": {"content": "早安"}}
    assert (await sim.call("webhook/send", text, key="sim-robot-key-0001"))["errcode"] == 0
    assert (await sim.call("webhook/send", text, key="nope"))["errcode"] == 93000


# --- the command ---------------------------------------------------------------------------------


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "SOPBOT_"))}
    clean["PYTHONPATH"] = str(REPO)
    return subprocess.Popen([sys.executable, "-m", "app.faces.cli.main", *args],
                            env={**clean, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_sim_command_reports_a_bad_setting_in_one_line() -> None:
    process = run_cli(["sim"], {"WECOM_CALLBACK_AES_KEY": "short-secret"})
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert stderr == ("sopbot: configuration error: WECOM_CALLBACK_AES_KEY: must be exactly 43 "
                      "characters of A-Z, a-z, 0-9 (got 12)\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_sim_command_serves_the_api() -> None:
    port = free_port()
    process = run_cli(["sim", "--port", str(port)], {"WECOM_AGENT_SECRET": "cli-secret-1",
                                                     "WECOM_CALLBACK_AES_KEY": AES_KEY})
    try:
        answer = _poll_gettoken(port, "cli-secret-1")
        assert answer["errcode"] == 0 and answer["expires_in"] == 7200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert "cli-secret-1" not in stderr and AES_KEY not in stderr


def _poll_gettoken(port: int, secret: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/cgi-bin/gettoken", trust_env=False,
                             params={"corpid": "wwsopbotsim000001", "corpsecret": secret}).json()
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def test_scenario_errors_are_http_4xx(sim: RunningSim, bot: TinyBot) -> None:
    await sim.scenario("friend_add", userid="staff01", external_userid="wmDup")
    again = await sim.client.post("/sim/scenarios/friend_add",
                                  json={"userid": "staff01", "external_userid": "wmDup"})
    assert again.status_code == 409 and "already" in again.json()["error"]
    missing = await sim.client.post("/sim/scenarios/confirm_mass_task",
                                    json={"msgid": "none", "userid": "staff01"})
    assert missing.status_code == 404
    assert parse_xml(bot.received[0]["plaintext"])["ExternalUserID"] == "wmDup"
