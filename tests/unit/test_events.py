"""Typed events from decrypted WeCom payloads (wecom-reference.md §3, §4.1-4.7)."""

from __future__ import annotations

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine.wecom import events as ev
from app.engine.wecom.parsing import event_from_xml, parse_event
from app.engine.wecom.xmlutil import XmlError, parse_xml
from tests.fakes import payloads

T0 = 1700000000

# --- every class, from the builders ----------------------------------------------------------

BUILT = [
    (lambda: payloads.text_message("/help", msg_id=7300000000000000123), ev.TextMessage,
     {"content": "/help", "msg_id": "7300000000000000123", "from_user_name": "op1",
      "agent_id": 1000002, "to_user_name": "wwcorp"}),
    (lambda: payloads.image_message(media_id="M1"), ev.ImageMessage,
     {"media_id": "M1", "pic_url": "https://wework.qpic.cn/fake/image.jpg"}),
    (lambda: payloads.voice_message(media_id="V1"), ev.VoiceMessage,
     {"media_id": "V1", "format": "amr"}),
    (lambda: payloads.video_message(media_id="VD", thumb_media_id="TH"), ev.VideoMessage,
     {"media_id": "VD", "thumb_media_id": "TH"}),
    (lambda: payloads.location_message(23.134521, 113.358803, 20, "广州"), ev.LocationMessage,
     {"location_x": 23.134521, "location_y": 113.358803, "scale": 20, "label": "广州"}),
    (lambda: payloads.link_message(title="T", url="https://x.test/a"), ev.LinkMessage,
     {"title": "T", "url": "https://x.test/a", "description": "本周六线下交流会"}),
    (lambda: payloads.enter_agent(from_user="op2", agent_id=7), ev.EnterAgent,
     {"from_user_name": "op2", "agent_id": 7, "event_key": ""}),
    (lambda: payloads.external_contact(state="ch1", welcome_code="WC1", external_user_id="wmA"),
     ev.ExternalContactAdded,
     {"state": "ch1", "welcome_code": "WC1", "external_user_id": "wmA", "user_id": "staff01",
      "from_user_name": "sys", "agent_id": None}),
    (lambda: payloads.external_contact("add_half_external_contact", state="s2"),
     ev.ExternalContactHalfAdded, {"state": "s2", "change_type": "add_half_external_contact"}),
    (lambda: payloads.external_contact("edit_external_contact"), ev.ExternalContactEdited,
     {"change_type": "edit_external_contact"}),
    (lambda: payloads.external_contact("del_external_contact", Source="DELETE_BY_TRANSFER"),
     ev.ExternalContactDeleted, {"source": "DELETE_BY_TRANSFER"}),
    (lambda: payloads.external_contact("del_follow_user"), ev.FollowUserDeleted,
     {"change_type": "del_follow_user"}),
    (lambda: payloads.external_contact("transfer_fail", FailReason="customer_refused"),
     ev.TransferFailed, {"fail_reason": "customer_refused"}),
    (lambda: payloads.external_contact("msg_audit_approved", welcome_code="WC9"),
     ev.MsgAuditApproved, {"welcome_code": "WC9"}),
    (lambda: payloads.external_chat("create", chat_id="wrC"), ev.ExternalChatCreated,
     {"chat_id": "wrC", "change_type": "create"}),
    (lambda: payloads.external_chat("dismiss", chat_id="wrD"), ev.ExternalChatDismissed,
     {"chat_id": "wrD", "change_type": "dismiss"}),
    (lambda: payloads.external_chat(join_scene=3, mem_change_list=["wmA", "wmB"]),
     ev.ChatMemberJoined,
     {"update_detail": "add_member", "join_scene": 3, "mem_change_cnt": 2,
      "mem_change_list": ["wmA", "wmB"], "quit_scene": None}),
    (lambda: payloads.external_chat(update_detail="del_member", quit_scene=1,
                                    mem_change_list=["wmA"]),
     ev.ChatMemberLeft, {"quit_scene": 1, "mem_change_cnt": 1, "mem_change_list": ["wmA"]}),
    (lambda: payloads.external_chat(update_detail="change_owner"), ev.ChatOwnerChanged,
     {"update_detail": "change_owner", "mem_change_list": [], "join_scene": None}),
    (lambda: payloads.external_chat(update_detail="change_name"), ev.ChatNameChanged,
     {"update_detail": "change_name"}),
    (lambda: payloads.external_chat(update_detail="change_notice"), ev.ChatNoticeChanged,
     {"update_detail": "change_notice"}),
    (lambda: payloads.external_tag("etX", "tag_group", "delete", strategy_id="9"),
     ev.ExternalTagChanged,
     {"tag_id": "etX", "tag_type": "tag_group", "change_type": "delete", "strategy_id": "9"}),
    (lambda: payloads.kf_msg_or_event(token="ENCTOK", open_kf_id="wkK"), ev.KfMsgOrEvent,
     {"token": "ENCTOK", "open_kf_id": "wkK", "from_user_name": ""}),
    (lambda: payloads.kf_account_auth_change("wkAdd", "wkDel"), ev.KfAccountAuthChanged,
     {"auth_add_open_kf_id": "wkAdd", "auth_del_open_kf_id": "wkDel"}),
    (lambda: payloads.msgaudit_notify(), ev.MsgAuditNotify, {"event": "msgaudit_notify"}),
]


@pytest.mark.parametrize(("build", "cls", "expected"), BUILT, ids=[c.__name__ for _, c, _ in BUILT])
def test_builder_payload_parses_to_its_class(build, cls, expected):
    xml = build()
    event = event_from_xml(xml)
    assert type(event) is cls
    assert {name: getattr(event, name) for name in expected} == expected
    assert event.raw == parse_xml(xml)
    assert event.create_time > T0


def test_builders_cover_every_concrete_class():
    concrete = {c for c in vars(ev).values() if isinstance(c, type) and issubclass(c, ev.Event)}
    abstract = {ev.Event, ev.Message, ev.ExternalContactEvent, ev.ExternalChatEvent,
                ev.ExternalChatUpdated, ev.UnknownEvent}
    assert {cls for _, cls, _ in BUILT} == concrete - abstract


# --- every class, from XML written the way WeCom sends it ------------------------------------


def wecom(*lines: str) -> str:
    """A plaintext laid out like the reference's examples: one or more elements per line."""
    return "<xml>" + "\n".join(lines) + "</xml>"


SYS = ("<ToUserName><![CDATA[wwCORPID]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
       "\n<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>")


def member(msg_type: str, body: str) -> str:
    return wecom(
        "<ToUserName><![CDATA[wwCORPID]]></ToUserName>",
        "<FromUserName><![CDATA[zhangsan]]></FromUserName>",
        f"<CreateTime>{T0}</CreateTime>",
        f"<MsgType><![CDATA[{msg_type}]]></MsgType>",
        body,
        "<MsgId>1234567890123456789</MsgId>",
        "<AgentID>1000002</AgentID>",
    )


def contact(change_type: str, extra: str = "") -> str:
    return wecom(
        SYS,
        "<Event><![CDATA[change_external_contact]]></Event>"
        f"<ChangeType><![CDATA[{change_type}]]></ChangeType>",
        "<UserID><![CDATA[staff01]]></UserID>"
        "<ExternalUserID><![CDATA[wmEXAMPLE0001]]></ExternalUserID>",
        extra,
    )


def chat(change_type: str, extra: str = "") -> str:
    return wecom(
        SYS,
        "<Event><![CDATA[change_external_chat]]></Event>"
        "<ChatId><![CDATA[wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA]]></ChatId>",
        f"<ChangeType><![CDATA[{change_type}]]></ChangeType>",
        extra,
    )


def update(detail: str, extra: str = "") -> str:
    return chat("update", f"<UpdateDetail><![CDATA[{detail}]]></UpdateDetail>\n{extra}")


HANDWRITTEN = [
    (member("text", "<Content><![CDATA[你好 /help]]></Content>"), ev.TextMessage,
     {"content": "你好 /help", "msg_id": "1234567890123456789", "from_user_name": "zhangsan",
      "agent_id": 1000002, "create_time": T0, "to_user_name": "wwCORPID", "msg_type": "text"}),
    (member("image", "<PicUrl><![CDATA[http://p.test/1.jpg]]></PicUrl>\n"
                     "<MediaId><![CDATA[media_id]]></MediaId>"),
     ev.ImageMessage, {"pic_url": "http://p.test/1.jpg", "media_id": "media_id"}),
    (member("voice", "<MediaId><![CDATA[mv]]></MediaId><Format><![CDATA[amr]]></Format>"),
     ev.VoiceMessage, {"media_id": "mv", "format": "amr"}),
    (member("video", "<MediaId><![CDATA[mv]]></MediaId>"
                     "<ThumbMediaId><![CDATA[th]]></ThumbMediaId>"),
     ev.VideoMessage, {"media_id": "mv", "thumb_media_id": "th"}),
    (member("location", "<Location_X>23.134521</Location_X>\n<Location_Y>113.358803</Location_Y>\n"
                        "<Scale>20</Scale>\n<Label><![CDATA[位置信息]]></Label>"),
     ev.LocationMessage,
     {"location_x": 23.134521, "location_y": 113.358803, "scale": 20, "label": "位置信息"}),
    (member("link", "<Title><![CDATA[this is a title!]]></Title>"
                    "<Description><![CDATA[this is a description!]]></Description>\n"
                    "<Url><![CDATA[URL]]></Url><PicUrl><![CDATA[PIC_URL]]></PicUrl>"),
     ev.LinkMessage, {"title": "this is a title!", "description": "this is a description!",
                      "url": "URL", "pic_url": "PIC_URL"}),
    (wecom("<ToUserName><![CDATA[wwCORPID]]></ToUserName>",
           "<FromUserName><![CDATA[zhangsan]]></FromUserName>",
           "<CreateTime>1408091189</CreateTime>", "<MsgType><![CDATA[event]]></MsgType>",
           "<Event><![CDATA[enter_agent]]></Event>", "<EventKey><![CDATA[]]></EventKey>",
           "<AgentID>1</AgentID>"),
     ev.EnterAgent,
     {"from_user_name": "zhangsan", "agent_id": 1, "event_key": "", "create_time": 1408091189,
      "event": "enter_agent"}),
    (contact("add_external_contact", "<State><![CDATA[ch_parent_sh]]></State>"
                                     "<WelcomeCode><![CDATA[WC_EXAMPLE]]></WelcomeCode>"),
     ev.ExternalContactAdded,
     {"user_id": "staff01", "external_user_id": "wmEXAMPLE0001", "state": "ch_parent_sh",
      "welcome_code": "WC_EXAMPLE", "from_user_name": "sys", "agent_id": None,
      "create_time": T0}),
    (contact("add_half_external_contact", "<WelcomeCode><![CDATA[WC2]]></WelcomeCode>"),
     ev.ExternalContactHalfAdded, {"state": "", "welcome_code": "WC2"}),
    (contact("edit_external_contact"), ev.ExternalContactEdited,
     {"change_type": "edit_external_contact", "user_id": "staff01"}),
    (contact("del_external_contact", "<Source><![CDATA[DELETE_BY_TRANSFER]]></Source>"),
     ev.ExternalContactDeleted, {"source": "DELETE_BY_TRANSFER"}),
    (contact("del_follow_user"), ev.FollowUserDeleted, {"external_user_id": "wmEXAMPLE0001"}),
    (contact("transfer_fail", "<FailReason><![CDATA[customer_limit_exceed]]></FailReason>"),
     ev.TransferFailed, {"fail_reason": "customer_limit_exceed"}),
    (contact("msg_audit_approved"), ev.MsgAuditApproved, {"welcome_code": None}),
    (chat("create"), ev.ExternalChatCreated,
     {"chat_id": "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", "change_type": "create"}),
    (chat("dismiss"), ev.ExternalChatDismissed, {"change_type": "dismiss"}),
    (update("add_member", "<JoinScene>3</JoinScene>\n<MemChangeCnt>2</MemChangeCnt>\n"
                          "<MemChangeList>\n  <Item><![CDATA[Jack]]></Item>\n"
                          "  <Item><![CDATA[Rose]]></Item>\n</MemChangeList>\n"
                          "<LastMemVer><![CDATA[9c3f97c2ada667dfb5f6d03308d963e1]]></LastMemVer>\n"
                          "<CurMemVer><![CDATA[71217227bbd112ecfe3a49c482195cb4]]></CurMemVer>"),
     ev.ChatMemberJoined,
     {"join_scene": 3, "mem_change_cnt": 2, "mem_change_list": ["Jack", "Rose"],
      "last_mem_ver": "9c3f97c2ada667dfb5f6d03308d963e1",
      "cur_mem_ver": "71217227bbd112ecfe3a49c482195cb4", "quit_scene": None}),
    (update("del_member", "<QuitScene>1</QuitScene><MemChangeCnt>1</MemChangeCnt>"
                          "<MemChangeList><Item><![CDATA[wmSolo]]></Item></MemChangeList>"),
     ev.ChatMemberLeft, {"quit_scene": 1, "mem_change_cnt": 1, "mem_change_list": ["wmSolo"]}),
    (update("change_owner"), ev.ChatOwnerChanged,
     {"update_detail": "change_owner", "mem_change_list": [], "mem_change_cnt": None}),
    # A published capture: change_name carrying JoinScene/MemChangeCnt and an empty list.
    (update("change_name", "<JoinScene>0</JoinScene><MemChangeCnt>0</MemChangeCnt>"
                           "<MemChangeList></MemChangeList>"),
     ev.ChatNameChanged, {"join_scene": 0, "mem_change_cnt": 0, "mem_change_list": []}),
    (update("change_notice", "<MemChangeList>\n</MemChangeList>"), ev.ChatNoticeChanged,
     {"mem_change_list": []}),
    (wecom(SYS, "<Event><![CDATA[change_external_tag]]></Event>",
           "<Id><![CDATA[etm7wjCgAA5ZAHl5dG8ANsV4KgAA]]></Id><TagType><![CDATA[tag]]></TagType>",
           "<ChangeType><![CDATA[create]]></ChangeType><StrategyId>1</StrategyId>"),
     ev.ExternalTagChanged,
     {"tag_id": "etm7wjCgAA5ZAHl5dG8ANsV4KgAA", "tag_type": "tag", "change_type": "create",
      "strategy_id": "1"}),
    (wecom(SYS, "<Event><![CDATA[change_external_tag]]></Event><Id><![CDATA[]]></Id>",
           "<TagType><![CDATA[tag_group]]></TagType><ChangeType><![CDATA[shuffle]]></ChangeType>"),
     ev.ExternalTagChanged, {"tag_id": "", "tag_type": "tag_group", "change_type": "shuffle"}),
    (wecom("<ToUserName><![CDATA[ww12345678910]]></ToUserName>",
           "<CreateTime>1348831860</CreateTime>", "<MsgType><![CDATA[event]]></MsgType>",
           "<Event><![CDATA[kf_msg_or_event]]></Event>",
           "<Token><![CDATA[ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR]]></Token>",
           "<OpenKfId><![CDATA[wkxxxxxxx]]></OpenKfId>"),
     ev.KfMsgOrEvent,
     {"token": "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR", "open_kf_id": "wkxxxxxxx",
      "from_user_name": "", "agent_id": None, "create_time": 1348831860}),
    (wecom("<ToUserName><![CDATA[ww12345678910]]></ToUserName>",
           "<CreateTime>1348831860</CreateTime>", "<MsgType><![CDATA[event]]></MsgType>",
           "<Event><![CDATA[kf_account_auth_change]]></Event>",
           "<AuthDelOpenKfId><![CDATA[wkOLD]]></AuthDelOpenKfId>"),
     ev.KfAccountAuthChanged, {"auth_add_open_kf_id": "", "auth_del_open_kf_id": "wkOLD"}),
    (wecom("<ToUserName><![CDATA[ww12345678910]]></ToUserName>",
           "<FromUserName><![CDATA[sys]]></FromUserName>",
           "<CreateTime>1348831860</CreateTime>", "<MsgType><![CDATA[event]]></MsgType>",
           "<Event><![CDATA[msgaudit_notify]]></Event>", "<AgentID>2000003</AgentID>"),
     ev.MsgAuditNotify, {"agent_id": 2000003, "create_time": 1348831860}),
]


@pytest.mark.parametrize(("xml", "cls", "expected"), HANDWRITTEN,
                         ids=[f"{c.__name__}-{i}" for i, (_, c, _) in enumerate(HANDWRITTEN)])
def test_wecom_style_xml_parses_to_its_class(xml, cls, expected):
    event = event_from_xml(xml.encode("utf-8"))
    assert type(event) is cls
    assert {name: getattr(event, name) for name in expected} == expected


def test_handwritten_examples_cover_every_built_class():
    assert {cls for _, cls, _ in HANDWRITTEN} == {cls for _, cls, _ in BUILT}


# --- kinds, class tree, replies ---------------------------------------------------------------

KINDS = {
    ev.TextMessage: "text", ev.ImageMessage: "image", ev.VoiceMessage: "voice",
    ev.VideoMessage: "video", ev.LocationMessage: "location", ev.LinkMessage: "link",
    ev.EnterAgent: "enter_agent",
    ev.ExternalContactAdded: "external_contact.add",
    ev.ExternalContactHalfAdded: "external_contact.add_half",
    ev.ExternalContactEdited: "external_contact.edit",
    ev.ExternalContactDeleted: "external_contact.del",
    ev.FollowUserDeleted: "external_contact.del_follow_user",
    ev.TransferFailed: "external_contact.transfer_fail",
    ev.MsgAuditApproved: "external_contact.msg_audit_approved",
    ev.ExternalChatCreated: "external_chat.create",
    ev.ExternalChatDismissed: "external_chat.dismiss",
    ev.ChatMemberJoined: "external_chat.update.add_member",
    ev.ChatMemberLeft: "external_chat.update.del_member",
    ev.ChatOwnerChanged: "external_chat.update.change_owner",
    ev.ChatNameChanged: "external_chat.update.change_name",
    ev.ChatNoticeChanged: "external_chat.update.change_notice",
    ev.KfMsgOrEvent: "kf_msg_or_event",
    ev.KfAccountAuthChanged: "kf_account_auth_change",
    ev.MsgAuditNotify: "msgaudit_notify",
}


@pytest.mark.parametrize(("xml", "cls", "_expected"), HANDWRITTEN,
                         ids=[f"{c.__name__}-{i}" for i, (_, c, _) in enumerate(HANDWRITTEN)])
def test_kind_is_short_and_stable(xml, cls, _expected):
    event = event_from_xml(xml)
    if cls is ev.ExternalTagChanged:
        assert event.kind == f"external_tag.{event.change_type}"
    else:
        assert event.kind == KINDS[cls]
    assert len(event.kind) <= 64


def test_unknown_kind():
    assert parse_event({}).kind == "unknown"


def handwritten(cls: type) -> ev.Event:
    return event_from_xml(next(xml for xml, c, _ in HANDWRITTEN if c is cls))


@pytest.mark.parametrize(("event", "bases"), [
    (handwritten(ev.ChatMemberJoined), (ev.ExternalChatUpdated, ev.ExternalChatEvent, ev.Event)),
    (handwritten(ev.ChatNoticeChanged), (ev.ExternalChatUpdated, ev.ExternalChatEvent)),
    (handwritten(ev.ExternalChatCreated), (ev.ExternalChatEvent,)),
    (handwritten(ev.ExternalContactAdded), (ev.ExternalContactEvent, ev.Event)),
    (handwritten(ev.TransferFailed), (ev.ExternalContactEvent,)),
    (handwritten(ev.TextMessage), (ev.Message, ev.Event)),
    (handwritten(ev.LocationMessage), (ev.Message,)),
    (parse_event({}), (ev.Event,)),
], ids=lambda value: type(value).__name__ if isinstance(value, ev.Event) else None)
def test_subclasses_are_instances_of_their_bases(event, bases):
    assert all(isinstance(event, base) for base in bases)


def test_siblings_are_not_instances_of_each_other():
    joined = event_from_xml(payloads.external_chat(update_detail="add_member"))
    created = event_from_xml(payloads.external_chat("create"))
    assert not isinstance(joined, ev.ChatMemberLeft)
    assert not isinstance(created, ev.ExternalChatUpdated)
    assert not isinstance(joined, ev.ExternalContactEvent)


def test_only_member_messages_accept_a_reply():
    replying = {cls for cls in KINDS if cls.accepts_reply}
    assert replying == {ev.TextMessage, ev.ImageMessage, ev.VoiceMessage, ev.VideoMessage,
                        ev.LocationMessage, ev.LinkMessage}
    assert ev.UnknownEvent.accepts_reply is False


# --- field handling ---------------------------------------------------------------------------


def test_msg_id_stays_an_exact_string_beyond_float_precision():
    event = event_from_xml(payloads.text_message(msg_id=9223372036854775807))
    assert event.msg_id == "9223372036854775807"
    assert isinstance(event.create_time, int) and isinstance(event.agent_id, int)


def test_welcome_code_and_state_absent_or_empty():
    absent = event_from_xml(payloads.external_contact(welcome_code=None))
    empty = event_from_xml(payloads.external_contact(welcome_code="", state=""))
    assert (absent.welcome_code, absent.state) == (None, "")
    assert (empty.welcome_code, empty.state) == (None, "")


def test_unmodelled_fields_are_kept_in_raw():
    event = event_from_xml(payloads.external_contact(NewField="x", AgentID=5))
    assert event.raw["NewField"] == "x"
    assert not hasattr(event, "NewField") and event.agent_id == 5


def test_numbers_given_as_ints_are_accepted():
    event = parse_event({"ToUserName": "ww", "FromUserName": "u", "CreateTime": T0,
                         "MsgType": "text", "Content": "hi", "MsgId": 42, "AgentID": 3})
    assert (event.create_time, event.msg_id, event.agent_id) == (T0, "42", 3)


def test_models_accept_field_names_and_are_frozen():
    event = ev.TextMessage(to_user_name="ww", from_user_name="u", create_time=1, msg_type="text",
                           agent_id=2, msg_id="9", content="hi")
    assert event.dedupe_key() == "msg:2:9"
    with pytest.raises(pydantic.ValidationError):
        event.content = "changed"


def test_events_are_hashable_and_equal_when_parsed_from_the_same_payload():
    xml = payloads.external_contact(create_time=T0)
    assert event_from_xml(xml) == event_from_xml(xml)
    assert len({event_from_xml(xml), event_from_xml(xml)}) == 1


# --- unknown and invalid payloads -------------------------------------------------------------


def fields_of(xml: str, **changes: str | None) -> dict:
    fields = parse_xml(xml)
    for tag, value in changes.items():
        if value is None:
            fields.pop(tag)
        else:
            fields[tag] = value
    return fields


@pytest.mark.parametrize(("fields", "reason"), [
    (fields_of(payloads.text_message(), MsgType="foo"), "unknown MsgType 'foo'"),
    (fields_of(payloads.text_message(), MsgType=None), "missing MsgType"),
    (fields_of(payloads.enter_agent(), Event="click"), "unknown Event 'click'"),
    (fields_of(payloads.enter_agent(), Event=None), "missing Event"),
    (fields_of(payloads.external_contact(), ChangeType="x"),
     "unknown ChangeType 'x' for change_external_contact"),
    (fields_of(payloads.external_chat(), ChangeType="merge"),
     "unknown ChangeType 'merge' for change_external_chat"),
    (fields_of(payloads.external_chat(), UpdateDetail="change_avatar"),
     "unknown UpdateDetail 'change_avatar' for change_external_chat update"),
    (fields_of(payloads.external_chat(), UpdateDetail=None),
     "missing UpdateDetail for change_external_chat update"),
])
def test_unrecognised_payload_becomes_unknown_event_with_reason(fields, reason):
    event = parse_event(fields)
    assert type(event) is ev.UnknownEvent
    assert event.reason == reason
    assert event.raw == fields
    assert event.to_user_name == "wwcorp" and event.create_time > T0


@pytest.mark.parametrize(("xml", "missing", "why"), [
    (payloads.external_contact(ExternalUserID=None), "ExternalUserID", "Field required"),
    (payloads.text_message(MsgId=None), "MsgId", "Field required"),
    (payloads.text_message(MsgId=""), "MsgId", "at least 1 character"),
    (payloads.kf_msg_or_event(Token=None), "Token", "Field required"),
    (payloads.external_chat(ChatId=None), "ChatId", "Field required"),
    (payloads.text_message(CreateTime="yesterday"), "CreateTime", "valid integer"),
    (payloads.location_message(Location_X="north"), "Location_X", "valid number"),
    (payloads.external_tag(TagType="label"), "TagType", "'tag' or 'tag_group'"),
    (payloads.external_chat(JoinScene="three"), "JoinScene", "valid integer"),
])
def test_known_type_with_invalid_fields_becomes_unknown_event(xml, missing, why):
    event = event_from_xml(xml)
    assert type(event) is ev.UnknownEvent
    assert event.reason.startswith("invalid ")
    assert f"{missing}: " in event.reason and why in event.reason
    assert "\n" not in event.reason
    assert event.raw == parse_xml(xml)


def test_unknown_event_takes_common_fields_leniently():
    event = parse_event({"MsgType": "event", "Event": "new_thing", "CreateTime": "soon",
                         "AgentID": ["1"], "ToUserName": {"a": "b"}, "FromUserName": "sys"})
    assert (event.create_time, event.agent_id, event.to_user_name) == (0, None, "")
    assert (event.from_user_name, event.event, event.reason) == \
        ("sys", "new_thing", "unknown Event 'new_thing'")


def test_long_unknown_values_are_shortened_in_the_reason():
    event = parse_event({"MsgType": "x" * 500})
    assert event.reason.startswith("unknown MsgType 'xxx") and len(event.reason) < 80
    assert event.raw["MsgType"] == "x" * 500


def test_non_mapping_payload_becomes_unknown_event():
    event = parse_event(["not", "a", "dict"])  # type: ignore[arg-type]
    assert isinstance(event, ev.UnknownEvent) and "not a mapping" in event.reason


xml_values = st.recursive(
    st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=16), xml_values, max_size=8))
def test_any_dict_without_a_known_type_becomes_unknown_event(fields):
    fields.pop("MsgType", None)
    event = parse_event(fields)
    assert type(event) is ev.UnknownEvent
    assert event.reason == "missing MsgType"
    assert event.raw == fields
    assert event.dedupe_key() == parse_event(dict(fields)).dedupe_key()
    assert len(event.dedupe_key()) <= 80


ALL_BUILDERS = [build for build, _, _ in BUILT]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ALL_BUILDERS), st.data())
def test_corrupting_any_field_never_raises(build, data):
    fields = parse_xml(build())
    tag = data.draw(st.sampled_from(sorted(fields)))
    fields[tag] = data.draw(xml_values)
    event = parse_event(fields)
    assert isinstance(event, ev.Event)
    assert event.raw == fields
    assert len(event.kind) <= 64 and len(event.dedupe_key()) <= 80
    if isinstance(event, ev.UnknownEvent):
        assert event.reason


# --- dedupe keys ------------------------------------------------------------------------------

COMPACT = (
    "<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
    "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    "<Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[wr1]]></ChatId>"
    "<ChangeType><![CDATA[update]]></ChangeType><UpdateDetail><![CDATA[add_member]]></UpdateDetail>"
    "<MemChangeList><Item><![CDATA[wmA]]></Item><Item><![CDATA[wmB]]></Item></MemChangeList></xml>"
)
REFORMATTED = """<?xml version="1.0" encoding="utf-8"?>
<xml>
  <FromUserName>sys</FromUserName>
  <ToUserName>ww1</ToUserName>
  <MsgType><![CDATA[event]]></MsgType>
  <CreateTime>1700000000</CreateTime>
  <Event>change_external_chat</Event>
  <ChatId><![CDATA[wr1]]></ChatId>
  <ChangeType>update</ChangeType>
  <UpdateDetail><![CDATA[add_member]]></UpdateDetail>
  <MemChangeList>
    <Item>wmA</Item>
    <Item><![CDATA[wmB]]></Item>
  </MemChangeList>
</xml>
"""


def test_same_payload_with_different_formatting_has_the_same_key():
    compact, reformatted = event_from_xml(COMPACT), event_from_xml(REFORMATTED)
    assert type(compact) is ev.ChatMemberJoined
    assert compact.dedupe_key() == reformatted.dedupe_key()
    assert compact.dedupe_key().startswith("sha256:") and len(compact.dedupe_key()) == 71


def test_retried_payload_has_the_same_key():
    xml = payloads.external_contact(create_time=T0)
    assert event_from_xml(xml).dedupe_key() == event_from_xml(xml.encode()).dedupe_key()


def test_two_customers_added_in_the_same_second_have_different_keys():
    first = event_from_xml(payloads.external_contact(create_time=T0, external_user_id="wmA",
                                                     welcome_code=None))
    second = event_from_xml(payloads.external_contact(create_time=T0, external_user_id="wmB",
                                                      welcome_code=None))
    assert (first.from_user_name, first.create_time) == (second.from_user_name,
                                                         second.create_time)
    assert first.dedupe_key() != second.dedupe_key()


def test_chat_member_list_order_is_part_of_the_key():
    one = event_from_xml(payloads.external_chat(chat_id="wr", create_time=T0,
                                                mem_change_list=["wmA"], last_mem_ver="1",
                                                cur_mem_ver="2"))
    two = event_from_xml(payloads.external_chat(chat_id="wr", create_time=T0,
                                                mem_change_list=["wmB"], last_mem_ver="1",
                                                cur_mem_ver="2"))
    assert one.dedupe_key() != two.dedupe_key()


def test_messages_are_keyed_by_agent_and_msg_id():
    first = event_from_xml(payloads.text_message("a", msg_id=1234567890123456789))
    resent = event_from_xml(payloads.text_message("a", msg_id=1234567890123456789,
                                                  create_time=T0 + 5))
    other = event_from_xml(payloads.text_message("a", msg_id=1234567890123456790))
    assert first.dedupe_key() == resent.dedupe_key() == "msg:1000002:1234567890123456789"
    assert other.dedupe_key() != first.dedupe_key()


def test_message_keys_stay_within_80_chars():
    event = event_from_xml(payloads.text_message(msg_id="x" * 200, agent_id=10**30))
    assert event.dedupe_key().startswith("msg:sha256:") and len(event.dedupe_key()) <= 80


def test_dedupe_key_ignores_number_spelling_of_hand_built_dicts():
    as_text = parse_xml(payloads.enter_agent(create_time=T0))
    as_ints = {**as_text, "CreateTime": T0, "AgentID": int(as_text["AgentID"])}
    assert parse_event(as_text).dedupe_key() == parse_event(as_ints).dedupe_key()


# --- XML errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    b"<xml><ToUserName>ww</ToUserName>",
    b"not xml at all",
    b"",
    b"<root><MsgType>text</MsgType></root>",
    b'<!DOCTYPE xml [<!ENTITY a "b">]><xml><Content>&a;</Content></xml>',
])
def test_malformed_xml_raises_xml_error(data):
    with pytest.raises(XmlError):
        event_from_xml(data)


def test_builders_render_strings_in_cdata_and_numbers_bare():
    xml = payloads.location_message(msg_id=77, create_time=T0)
    assert "<MsgId>77</MsgId>" in xml and f"<CreateTime>{T0}</CreateTime>" in xml
    assert "<Location_X>31.230416</Location_X>" in xml and "<Scale>15</Scale>" in xml
    assert "<MsgType><![CDATA[location]]></MsgType>" in xml
    assert "<Label><![CDATA[上海市黄浦区人民大道]]></Label>" in xml


def test_builders_make_fresh_ids():
    first, second = event_from_xml(payloads.text_message()), event_from_xml(payloads.text_message())
    added = [event_from_xml(payloads.external_contact()) for _ in range(2)]
    assert first.msg_id != second.msg_id and len(first.msg_id) == 19
    assert added[0].external_user_id != added[1].external_user_id
    assert added[0].welcome_code != added[1].welcome_code
