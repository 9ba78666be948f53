"""The simulator's platform rules, on the world objects directly (no HTTP)."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.engine.wecom.xmlutil import parse_xml
from app.faces.sim import contacts, groups, kf, masssend, messages, tokens
from app.faces.sim.clock import SHANGHAI, ManualClock, shanghai_day
from app.faces.sim.config import SimSettings
from app.faces.sim.faults import FaultBook, FaultSpec
from app.faces.sim.state import Call, Reject, World

CORP = "wwsimtestcorp0001"
SECRET = "agent-secret-for-tests"


def make_world(**overrides: object) -> World:
    settings = SimSettings(_env_file=None, WECOM_CORP_ID=CORP, WECOM_AGENT_SECRET=SECRET,
                           **overrides)  # type: ignore[arg-type]
    return World(settings, ManualClock(start=datetime(2025, 3, 3, 10, tzinfo=SHANGHAI)
                                       .timestamp()))


def call(body: dict | None = None, **query: str) -> Call:
    return Call(query, body or {})


def errcode_of(fn, *args: object) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(Reject) as caught:
        fn(*args)
    return caught.value.errcode


def get_token(world: World, secret: str = SECRET, corpid: str = CORP) -> str:
    return tokens.gettoken(world, {"corpid": corpid, "corpsecret": secret})["access_token"]


# --- tokens -------------------------------------------------------------------------------------


def test_gettoken_returns_the_same_token_until_it_expires() -> None:
    world = make_world()
    first = get_token(world)
    world.clock.advance(7199)
    assert get_token(world) == first
    tokens.check_token(world, first)
    world.clock.advance(1)
    assert errcode_of(tokens.check_token, world, first) == 42001
    second = get_token(world)
    assert second != first
    assert tokens.check_token(world, second).app == "agent"


def test_gettoken_rejects_wrong_corp_and_secret() -> None:
    world = make_world()
    assert errcode_of(get_token, world, SECRET, "wwother") == 40013
    assert errcode_of(get_token, world, "wrong-secret") == 40001
    assert errcode_of(tokens.check_token, world, None) == 41001
    assert errcode_of(tokens.check_token, world, "made-up") == 40014


def test_each_secret_has_its_own_token() -> None:
    world = make_world(WECOM_KF_SECRET="kf-secret-for-tests")
    assert get_token(world) != get_token(world, "kf-secret-for-tests")


@pytest.mark.parametrize("code", [40014, 42001])
def test_invalidated_tokens_answer_the_chosen_code_and_gettoken_issues_a_new_one(
        code: int) -> None:
    world = make_world()
    old = get_token(world)
    assert tokens.invalidate_all(world, code) == 1
    assert errcode_of(tokens.check_token, world, old) == code
    new = get_token(world)
    assert new != old
    tokens.check_token(world, new)


# --- welcome codes ------------------------------------------------------------------------------


def test_friend_add_queues_the_add_event_with_welcome_code_and_state() -> None:
    world = make_world()
    follow, code = contacts.friend_add(world, "staff01", "wmCustomer1", state="ch_a")
    [pending] = world.take_callbacks()
    fields = parse_xml(pending.plaintext)
    assert fields["Event"] == "change_external_contact"
    assert fields["ChangeType"] == "add_external_contact"
    assert fields["FromUserName"] == "sys"
    assert (fields["UserID"], fields["ExternalUserID"]) == ("staff01", "wmCustomer1")
    assert (fields["State"], fields["WelcomeCode"]) == ("ch_a", code)
    assert follow.state == "ch_a"


def welcome(world: World, code: str) -> dict:
    return contacts.send_welcome_msg(world, call({"welcome_code": code,
                                                 "text": {"content": "欢迎"}}))


def test_welcome_code_is_single_use() -> None:
    world = make_world()
    _, code = contacts.friend_add(world, "staff01")
    world.clock.advance(19)
    assert welcome(world, code) == {}
    assert errcode_of(welcome, world, code) == 41051
    assert world.welcome_codes[code].sent["text"] == {"content": "欢迎"}


def test_welcome_code_expires_after_20_seconds() -> None:
    world = make_world()
    _, code = contacts.friend_add(world, "staff01")
    world.clock.advance(20.5)
    assert errcode_of(welcome, world, code) == 41050
    assert errcode_of(welcome, world, "WC-never-issued") == 41050


def test_welcome_needs_content_within_limits() -> None:
    world = make_world()
    _, code = contacts.friend_add(world, "staff01")
    empty = call({"welcome_code": code})
    assert errcode_of(contacts.send_welcome_msg, world, empty) == 40058
    too_long = call({"welcome_code": code, "text": {"content": "字" * 1334}})
    assert errcode_of(contacts.send_welcome_msg, world, too_long) == 45002
    bad_media = call({"welcome_code": code, "attachments": [
        {"msgtype": "image", "image": {"media_id": "unknown"}}]})
    assert errcode_of(contacts.send_welcome_msg, world, bad_media) == 40007


# --- relationships and API changes -------------------------------------------------------------


def test_mark_tag_and_get_need_a_relationship() -> None:
    world = make_world()
    tag_id = contacts.add_corp_tag(world, call({"group_name": "身份", "tag": [
        {"name": "店主"}]}))["tag_group"]["tag"][0]["id"]
    body = {"userid": "staff01", "external_userid": "wmStranger", "add_tag": [tag_id]}
    assert errcode_of(contacts.mark_tag, world, call(body)) == 84061
    get = call(external_userid="wmStranger")
    assert errcode_of(contacts.get_external_contact, world, get) == 84061
    contacts.friend_add(world, "staff01", "wmStranger", state="s1")
    world.take_callbacks()
    contacts.mark_tag(world, call(body))
    follow = contacts.get_external_contact(world, get)["follow_user"][0]
    assert follow["state"] == "s1"
    assert follow["tags"][0]["tag_name"] == "店主"
    assert errcode_of(contacts.mark_tag, world, call({**body, "add_tag": ["nope"]})) == 40068


def test_api_changes_queue_no_callbacks() -> None:
    world = make_world()
    contacts.friend_add(world, "staff01", "wmC")
    groups.group_create(world, "staff01", "wrChat1")
    world.take_callbacks()
    tag = contacts.add_corp_tag(world, call({"group_name": "g", "tag": [{"name": "t"}]}))
    tag_id = tag["tag_group"]["tag"][0]["id"]
    contacts.mark_tag(world, call({"userid": "staff01", "external_userid": "wmC",
                                   "add_tag": [tag_id]}))
    contacts.add_contact_way(world, call({"type": 1, "scene": 2, "user": ["staff01"],
                                          "state": "ch1"}))
    groups.add_join_way(world, call({"scene": 2, "chat_id_list": ["wrChat1"]}))
    groups.add_welcome_template(world, call({"text": {"content": "欢迎 %NICKNAME%"}}))
    assert world.pending_callbacks == []


def test_contact_way_limits() -> None:
    world = make_world()
    two_users = call({"type": 1, "scene": 2, "user": ["staff01", "staff02"]})
    assert errcode_of(contacts.add_contact_way, world, two_users) == 40058
    long_state = call({"type": 1, "scene": 2, "user": ["staff01"], "state": "x" * 31})
    assert errcode_of(contacts.add_contact_way, world, long_state) == 40058
    made = contacts.add_contact_way(world, call({"type": 1, "scene": 2, "user": ["staff01"],
                                                 "state": "x" * 30}))
    assert made["qr_code"].startswith("https://")
    way = contacts.get_contact_way(world, call({"config_id": made["config_id"]}))
    assert way["contact_way"]["skip_verify"] is True


def test_join_way_takes_at_most_five_groups() -> None:
    world = make_world()
    chats = [groups.group_create(world, "staff01").chat_id for _ in range(6)]
    assert errcode_of(groups.add_join_way, world, call({"scene": 2,
                                                        "chat_id_list": chats})) == 40058
    assert errcode_of(groups.add_join_way, world, call({"scene": 2,
                                                        "chat_id_list": ["wrNone"]})) == 40050


def test_group_member_events_chain_versions_and_map_scenes() -> None:
    world = make_world()
    group = groups.group_create(world, "staff01", "wrG")
    world.take_callbacks()
    groups.group_join(world, ["wmA", "wmB"], chat_id="wrG", join_scene=3, state="seg1")
    groups.group_quit(world, "wrG", ["wmA"], quit_scene=1)
    join, quit_ = (parse_xml(p.plaintext) for p in world.take_callbacks())
    assert (join["UpdateDetail"], join["JoinScene"], join["MemChangeCnt"]) == (
        "add_member", "3", "2")
    assert join["MemChangeList"] == ["wmA", "wmB"]
    assert quit_["LastMemVer"] == join["CurMemVer"]
    assert quit_["QuitScene"] == "1"
    got = groups.groupchat_get(world, call({"chat_id": "wrG"}))["group_chat"]
    member = next(m for m in got["member_list"] if m["userid"] == "wmB")
    assert (member["type"], member["join_scene"], member["state"]) == (2, 3, "seg1")
    assert got["member_version"] == groups.member_version(group)


def test_join_way_creates_a_room_when_its_groups_are_full() -> None:
    world = make_world()
    groups.group_create(world, "staff01", "wrFull", members=[f"wm{i}" for i in range(199)])
    way = groups.add_join_way(world, call({"scene": 2, "chat_id_list": ["wrFull"],
                                           "room_base_name": "家长群", "room_base_id": 7,
                                           "state": "seg"}))
    world.take_callbacks()
    group = groups.group_join(world, ["wmNew"], config_id=way["config_id"])
    assert group.chat_id != "wrFull" and group.name == "家长群7"
    kinds = [p.kind for p in world.take_callbacks()]
    assert kinds == ["change_external_chat/create", "change_external_chat/update/add_member"]


# --- mass send: one per group per day -----------------------------------------------------------


def post_to_groups(world: World, chats: list[str]) -> str:
    body = {"chat_type": "group", "sender": "staff01", "chat_id_list": chats,
            "text": {"content": "早安"}}
    return masssend.add_msg_template(world, call(body))["msgid"]


def send_status(world: World, msgid: str) -> dict[str, int]:
    rows = masssend.get_groupmsg_send_result(world, call({"msgid": msgid,
                                                          "userid": "staff01"}))["send_list"]
    return {row["chat_id"]: row["status"] for row in rows}


def test_mass_message_waits_for_confirmation_and_groups_get_one_per_day() -> None:
    world = make_world()
    for chat in ("wrA", "wrB"):
        groups.group_create(world, "staff01", chat)
    world.take_callbacks()
    first = post_to_groups(world, ["wrA"])
    assert send_status(world, first) == {"wrA": 0}
    masssend.confirm_mass_task(world, first, "staff01")
    assert send_status(world, first) == {"wrA": 1}
    second = post_to_groups(world, ["wrA", "wrB"])
    masssend.confirm_mass_task(world, second, "staff01")
    assert send_status(world, second) == {"wrA": 3, "wrB": 1}
    assert world.pending_callbacks == []  # WeCom reports no mass-send delivery by callback


def test_the_day_boundary_is_midnight_in_shanghai() -> None:
    world = make_world()
    world.clock.set(datetime(2025, 3, 3, 23, 59, 50, tzinfo=SHANGHAI).timestamp())
    groups.group_create(world, "staff01", "wrA")
    masssend.confirm_mass_task(world, post_to_groups(world, ["wrA"]), "staff01")
    world.clock.advance(15)
    assert str(shanghai_day(world.now())) == "2025-03-04"
    late = post_to_groups(world, ["wrA"])
    masssend.confirm_mass_task(world, late, "staff01")
    assert send_status(world, late) == {"wrA": 1}


def test_mass_send_to_groups_not_owned_by_the_sender_fails() -> None:
    world = make_world()
    groups.group_create(world, "staff02", "wrOther")
    body = {"chat_type": "group", "sender": "staff01", "chat_id_list": ["wrOther"],
            "text": {"content": "x"}}
    assert errcode_of(masssend.add_msg_template, world, call(body)) == 41048


def test_reminders_are_limited_to_three_per_24_hours() -> None:
    world = make_world()
    groups.group_create(world, "staff01", "wrA")
    msgid = post_to_groups(world, ["wrA"])
    for _ in range(3):
        masssend.remind_groupmsg_send(world, call({"msgid": msgid}))
        world.clock.advance(3600)
    assert errcode_of(masssend.remind_groupmsg_send, world, call({"msgid": msgid})) == 45009
    world.clock.advance(21 * 3600)
    masssend.remind_groupmsg_send(world, call({"msgid": msgid}))


# --- kf: 48 h window, 5 answers, sessions -------------------------------------------------------

KF = "wkSimKf0000001"


def kf_send(world: World, text: str = "答复", touser: str = "wmKf") -> dict:
    return kf.send_msg(world, call({"touser": touser, "open_kfid": KF, "msgtype": "text",
                                    "text": {"content": text}}))


def sync_all(world: World) -> list[dict]:
    return kf.sync_msg(world, call({}))["msg_list"]


def test_kf_allows_five_answers_per_customer_message() -> None:
    world = make_world()
    kf.customer_message(world, KF, "wmKf", "你好")
    world.take_callbacks()
    for _ in range(6):
        assert "msgid" in kf_send(world)  # the 6th is still "ok"...
    [sixth] = [s for s in world.kf_sent if not s["delivered"]]
    failure = sync_all(world)[-1]["event"]  # ...and fails afterwards
    assert failure == {"event_type": "msg_send_fail", "open_kfid": KF,
                       "external_userid": "wmKf", "fail_msgid": sixth["msgid"],
                       "fail_type": 6}
    [notice] = world.take_callbacks()
    assert parse_xml(notice.plaintext)["Event"] == "kf_msg_or_event"
    kf.customer_message(world, KF, "wmKf", "还有问题")
    kf_send(world)
    assert world.kf_sent[-1]["delivered"] is True


def test_kf_answers_fail_48_hours_after_the_customer_message() -> None:
    world = make_world()
    kf.customer_message(world, KF, "wmKf", "你好")
    world.clock.advance(48 * 3600 + 1)
    kf_send(world)
    assert sync_all(world)[-1]["event"]["fail_type"] == 4
    kf_send(world, touser="wmNeverWrote")
    assert world.kf_sent[-1]["fail_type"] == 4


def test_kf_session_states() -> None:
    world = make_world()
    kf.customer_message(world, KF, "wmKf", "人工")
    trans = {"open_kfid": KF, "external_userid": "wmKf"}
    assert "msg_code" in kf.service_state_trans(world, call({**trans, "service_state": 2}))
    assert errcode_of(kf_send, world) == 95018
    assert errcode_of(kf.service_state_trans, world, call({**trans, "service_state": 1})) == 95016
    kf.service_state_trans(world, call({**trans, "service_state": 3,
                                        "servicer_userid": "staff01"}))
    kf.service_state_trans(world, call({**trans, "service_state": 4}))
    assert errcode_of(kf.service_state_trans, world, call({**trans, "service_state": 0})) == 95016
    kf.customer_message(world, KF, "wmKf", "又来了")
    assert kf.service_state_get(world, call(trans))["service_state"] == 0
    kf.service_state_trans(world, call({**trans, "service_state": 4}))
    kf.customer_image(world, KF, "wmKf", b"\xff\xd8 a picture")  # a picture reopens it too
    assert kf.service_state_get(world, call(trans))["service_state"] == 0


def test_kf_enter_session_welcome_code_is_single_use_within_20_seconds() -> None:
    world = make_world()
    code = kf.enter_session(world, KF, "wmKf", "ad1", "p=1")["event"]["welcome_code"]
    body = {"code": code, "msgtype": "text", "text": {"content": "欢迎"}}
    kf.send_msg_on_event(world, call(body))
    assert errcode_of(kf.send_msg_on_event, world, call(body)) == 40058
    late = kf.enter_session(world, KF, "wmKf2")["event"]["welcome_code"]
    world.clock.advance(21)
    assert errcode_of(kf.send_msg_on_event, world, call({**body, "code": late})) == 40058


def test_kf_sync_pages_with_cursor_and_has_more() -> None:
    world = make_world()
    for i in range(5):
        kf.customer_message(world, KF, "wmKf", f"m{i}")
    token = parse_xml(world.take_callbacks()[-1].plaintext)["Token"]
    first = kf.sync_msg(world, call({"token": token, "limit": 2}))
    assert [m["text"]["content"] for m in first["msg_list"]] == ["m0", "m1"]
    assert first["has_more"] == 1
    empty = kf.sync_msg(world, Call({}, {"cursor": first["next_cursor"]}, empty_page=True))
    assert (empty["has_more"], empty["msg_list"]) == (1, [])
    rest = kf.sync_msg(world, call({"cursor": empty["next_cursor"], "limit": 10}))
    assert [m["text"]["content"] for m in rest["msg_list"]] == ["m2", "m3", "m4"]
    assert rest["has_more"] == 0
    world.clock.advance(601)
    assert errcode_of(kf.sync_msg, world, call({"token": token})) == 95007


# --- webhook ------------------------------------------------------------------------------------


def test_webhook_allows_20_messages_per_minute_per_key() -> None:
    world = make_world(SOPBOT_SIM_ROBOTS="robot-a,robot-b")
    text = {"msgtype": "text", "text": {"content": "hi"}}
    for _ in range(20):
        messages.webhook_send(world, call(text, key="robot-a"))
        world.clock.advance(1)
    assert errcode_of(messages.webhook_send, world, call(text, key="robot-a")) == 45009
    messages.webhook_send(world, call(text, key="robot-b"))
    world.clock.advance(40)
    messages.webhook_send(world, call(text, key="robot-a"))
    assert errcode_of(messages.webhook_send, world, call(text, key="unknown")) == 93000


def test_message_send_reports_unknown_users_and_refuses_when_none_is_left() -> None:
    world = make_world()
    body = {"agentid": 1000002, "msgtype": "text", "text": {"content": "x" * 3000}}
    sent = messages.message_send(world, call({**body, "touser": "staff01|Ghost"}))
    assert sent["invaliduser"] == "ghost"
    assert len(world.app_messages[-1]["text"]["content"]) == 2048  # truncated, as documented
    assert errcode_of(messages.message_send, world, call({**body, "touser": "ghost"})) == 81013
    assert errcode_of(messages.message_send, world,
                      call({**body, "touser": "staff01", "agentid": 7})) == 40056


# --- faults ---------------------------------------------------------------------------------------


def fault_pattern(seed: int, calls: int = 40) -> list[bool]:
    book = FaultBook(seed)
    book.add(FaultSpec(path="kf/send_msg", errcode=-1, rate=0.5))
    return [book.draw("kf/send_msg") is not None for _ in range(calls)]


def test_fault_rate_is_reproducible_with_a_seed() -> None:
    assert fault_pattern(7) == fault_pattern(7)
    assert 5 < sum(fault_pattern(7)) < 35
    assert fault_pattern(7) != fault_pattern(8)


def test_fault_count_and_path_matching() -> None:
    book = FaultBook(0)
    book.add(FaultSpec(path="/cgi-bin/externalcontact/*", errcode=45009, count=2))
    assert book.draw("kf/sync_msg") is None
    assert book.draw("externalcontact/send_welcome_msg") is not None
    assert book.draw("externalcontact/get") is not None
    assert book.draw("externalcontact/get") is None
    assert book.rules[0].describe()["applied"] == 2


@pytest.mark.parametrize("spec", [{}, {"errcode": 1, "drop": True}, {"after": True, "errcode": 1},
                                  {"empty_page": True, "path": "*"}, {"rate": 2, "drop": True}])
def test_fault_spec_rejects_nonsense(spec: dict) -> None:
    with pytest.raises(ValueError):
        FaultSpec(**spec)
