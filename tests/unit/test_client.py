"""The WeCom client against the fake WeCom at the transport seam: what goes on the wire, how
answers and failures come back, the token refresh, and the typed request models."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from app.engine.wecom import api
from app.engine.wecom import client as client_module
from app.engine.wecom.api import API_CALLS, ApiCall
from app.engine.wecom.api_contact import ContactCall
from app.engine.wecom.api_kf import KfCall
from app.engine.wecom.client import NotConfigured, WeComClient
from app.engine.wecom.errors import (
    ApiError,
    ConfigurationError,
    FinalError,
    InvalidRequest,
    NotSent,
    OutcomeUnknown,
    RateLimited,
    Retryable,
    TokenRejected,
    WeComError,
)
from tests.conftest import LogRecorder
from tests.fakes.wecom import BASE_URL, FakeWeCom, MemoryTokens

CORP = "wwtestcorp0000001"
SECRETS = {"agent": "agent-secret-value", "contact": "contact-secret-value",
           "kf": "kf-secret-value"}
ROBOT_KEY = "robot-key-0b7e1c"
WELCOME = "externalcontact/send_welcome_msg"


def welcome(text: str = "欢迎加入！", code: str = "WC1") -> api.SendWelcomeMsg:
    return api.SendWelcomeMsg(welcome_code=code, text=api.Text(content=text))


@pytest.fixture
def fake() -> FakeWeCom:
    return FakeWeCom(corp_id=CORP, secrets=SECRETS.values(), robot_keys=[ROBOT_KEY])


@pytest.fixture
async def client(fake: FakeWeCom) -> AsyncIterator[WeComClient]:
    wecom = fake.wecom_client(secrets={k: SecretStr(v) for k, v in SECRETS.items()},
                              robots={"ops": ROBOT_KEY})
    yield wecom
    await wecom.http.aclose()


def tokens_of(client: WeComClient) -> MemoryTokens:
    assert isinstance(client.tokens, MemoryTokens)
    return client.tokens


# --- the wire ------------------------------------------------------------------------------------


async def test_post_carries_the_token_and_returns_the_typed_answer(
        fake: FakeWeCom, client: WeComClient) -> None:
    way = await client.call(
        api.AddContactWay(type=1, scene=2, user=["staff01"], state="douyin:slot3"))
    assert isinstance(way, api.ContactWay)
    assert way.config_id and way.qr_code and way.errcode == 0
    (token_call,) = fake.calls_to("gettoken")
    assert token_call.query == {"corpid": CORP, "corpsecret": SECRETS["contact"]}
    call = fake.last("externalcontact/add_contact_way")
    assert (call.method, call.token, call.query) == ("POST", "tok-1", {})
    assert call.body == {"type": 1, "scene": 2, "user": ["staff01"], "state": "douyin:slot3"}


async def test_body_is_compact_utf8_without_escapes(fake: FakeWeCom,
                                                    client: WeComClient) -> None:
    await client.call(welcome("欢迎加入社群，回复「人工」找客服"))
    call = fake.last(WELCOME)
    assert "欢迎加入社群".encode() in call.raw
    assert b"\\u" not in call.raw
    assert b'", "' not in call.raw and b'": ' not in call.raw
    assert call.headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(call.raw) == {"welcome_code": "WC1",
                                    "text": {"content": "欢迎加入社群，回复「人工」找客服"}}


async def test_get_sends_the_query_and_no_body(fake: FakeWeCom, client: WeComClient) -> None:
    detail = await client.call(api.GetExternalContact(external_userid="wmA"))
    assert isinstance(detail, api.ExternalContactDetail)
    assert detail.external_contact is not None
    assert detail.external_contact.external_userid == "wmA"
    assert detail.follow_user[0].userid == "staff01"
    call = fake.last("externalcontact/get")
    assert (call.method, call.query, call.body, call.raw) == ("GET", {"external_userid": "wmA"},
                                                              None, b"")


async def test_each_secret_gets_its_own_token(fake: FakeWeCom, client: WeComClient) -> None:
    await client.call(welcome())
    await client.call(api.KfSendMsg(touser="wmA", open_kfid="wk1", msgtype="text",
                                    text=api.Text(content="您好")))
    await client.call(api.SendMessage(agentid=1000002, touser="op", msgtype="text",
                                      text=api.Text(content="hi")))
    secrets_used = [call.query["corpsecret"] for call in fake.calls_to("gettoken")]
    assert secrets_used == [SECRETS["contact"], SECRETS["kf"], SECRETS["agent"]]
    assert [c.token for c in fake.calls if c.path != "gettoken"] == ["tok-1", "tok-2", "tok-3"]


async def test_unknown_answer_fields_are_kept(fake: FakeWeCom, client: WeComClient) -> None:
    fake.script(WELCOME, {"brand_new_field": [1, 2]})
    answer = await client.call(welcome())
    assert answer.model_extra == {"brand_new_field": [1, 2]}


# --- errcodes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("errcode", "cls"), [
    (-1, Retryable),
    (45033, Retryable),
    (45009, RateLimited),
    (41051, FinalError),
    (84061, FinalError),
    (41001, InvalidRequest),
    (48002, ConfigurationError),
    (60020, ConfigurationError),
    (77777, FinalError),
])
async def test_errcodes_raise_their_class(fake: FakeWeCom, client: WeComClient,
                                          errcode: int, cls: type[Exception]) -> None:
    fake.script(WELCOME, errcode)
    with pytest.raises(cls) as caught:
        await client.call(welcome())
    exc = caught.value
    assert type(exc) is cls
    assert isinstance(exc, ApiError) and (exc.errcode, exc.api) == (errcode, WELCOME)
    assert len(fake.calls_to(WELCOME)) == 1  # only token rejections are retried here


async def test_rate_limit_says_how_long_to_wait(fake: FakeWeCom, client: WeComClient) -> None:
    fake.script(WELCOME, 45009)
    with pytest.raises(RateLimited) as caught:
        await client.call(welcome())
    assert caught.value.retry_after_s == 60.0


async def test_untrusted_ip_has_a_hint(fake: FakeWeCom, client: WeComClient) -> None:
    fake.script(WELCOME, {"errcode": 60020, "errmsg": "not allow to access from your ip"})
    with pytest.raises(ConfigurationError) as caught:
        await client.call(welcome())
    assert "企业可信IP" in caught.value.hint and "企业可信IP" in str(caught.value)


async def test_the_fake_welcome_code_is_single_use(client: WeComClient) -> None:
    await client.call(welcome(code="WC9"))
    with pytest.raises(FinalError) as caught:
        await client.call(welcome(code="WC9"))
    assert caught.value.errcode == 41051


# --- tokens --------------------------------------------------------------------------------------


@pytest.mark.parametrize("errcode", [42001, 40014])
async def test_a_rejected_token_is_refreshed_once_and_the_call_retried_once(
        fake: FakeWeCom, client: WeComClient, errcode: int) -> None:
    await client.call(welcome(code="WC1"))
    fake.expire_tokens(errcode)
    await client.call(welcome(code="WC2"))
    assert [(c.path, c.token) for c in fake.calls] == [
        ("gettoken", None), (WELCOME, "tok-1"),
        (WELCOME, "tok-1"), ("gettoken", None), (WELCOME, "tok-2")]
    assert tokens_of(client).refreshes == 1 and tokens_of(client).fetches == 2


async def test_a_second_rejection_is_raised_not_retried(fake: FakeWeCom,
                                                        client: WeComClient) -> None:
    fake.script(WELCOME, 42001, 42001)
    with pytest.raises(TokenRejected) as caught:
        await client.call(welcome())
    assert caught.value.errcode == 42001
    assert len(fake.calls_to(WELCOME)) == 2
    assert tokens_of(client).refreshes == 1


async def test_40001_outside_gettoken_refreshes_the_token(fake: FakeWeCom,
                                                          client: WeComClient) -> None:
    fake.script(WELCOME, 40001)
    await client.call(welcome())
    assert len(fake.calls_to(WELCOME)) == 2 and tokens_of(client).refreshes == 1


async def test_a_wrong_secret_is_a_configuration_error(fake: FakeWeCom) -> None:
    wecom = fake.wecom_client(secrets={"agent": SecretStr("not-the-secret")})
    with pytest.raises(ConfigurationError) as caught:
        await wecom.fetch_token("agent")
    assert caught.value.errcode == 40001 and caught.value.api == "gettoken"
    assert "WECOM_AGENT_SECRET" in caught.value.hint
    assert "not-the-secret" not in str(caught.value)


async def test_a_wrong_corp_id_is_a_configuration_error(fake: FakeWeCom) -> None:
    wecom = fake.wecom_client(corp_id="wwother", secrets={"agent": SecretStr(SECRETS["agent"])})
    with pytest.raises(ConfigurationError) as caught:
        await wecom.call(api.SendMessage(agentid=1, touser="op", msgtype="text",
                                         text=api.Text(content="hi")))
    assert caught.value.errcode == 40013 and "WECOM_CORP_ID" in caught.value.hint
    assert fake.calls_to("message/send") == []


async def test_fetch_token_answers_token_and_lifetime(client: WeComClient) -> None:
    assert await client.fetch_token("kf") == ("tok-1", 7200)
    assert await client.fetch_token("kf") == ("tok-1", 7200)  # the same until it expires


@pytest.mark.parametrize(("secrets", "name", "variable"), [
    ({"agent": SecretStr("x"), "kf": None}, "kf", "WECOM_KF_SECRET"),
    ({"agent": SecretStr("x"), "contact": SecretStr("")}, "contact", "WECOM_CONTACT_SECRET"),
    ({"contact": SecretStr("x")}, "agent", "WECOM_AGENT_SECRET"),
])
async def test_a_missing_secret_names_its_variable(fake: FakeWeCom, secrets: dict[str, Any],
                                                   name: str, variable: str) -> None:
    wecom = fake.wecom_client(secrets=secrets)
    with pytest.raises(NotConfigured) as caught:
        await wecom.fetch_token(name)
    assert isinstance(caught.value, ConfigurationError)
    assert variable in str(caught.value) and "x" not in caught.value.hint
    assert fake.calls == []


async def test_an_unknown_secret_name_is_refused(client: WeComClient) -> None:
    with pytest.raises(NotConfigured, match="no secret named 'payroll'"):
        await client.fetch_token("payroll")


async def test_without_a_token_provider_the_client_says_so(fake: FakeWeCom) -> None:
    wecom = WeComClient(fake.client(), base_url=BASE_URL, corp_id=CORP, secrets={})
    with pytest.raises(RuntimeError, match="TokenProvider"):
        await wecom.call(welcome())


# --- transport failures --------------------------------------------------------------------------


@pytest.mark.parametrize(("failure", "cls"), [
    (httpx.ConnectError("refused"), NotSent),
    (httpx.ConnectTimeout("slow connect"), NotSent),
    (httpx.PoolTimeout("pool full"), NotSent),
    (httpx.ReadTimeout("slow answer"), OutcomeUnknown),
    (httpx.WriteTimeout("slow write"), OutcomeUnknown),
    (httpx.ReadError("reset"), OutcomeUnknown),
    (httpx.WriteError("broken pipe"), OutcomeUnknown),
    (httpx.RemoteProtocolError("server disconnected"), OutcomeUnknown),
    (httpx.Response(502, text="Bad Gateway"), OutcomeUnknown),
    (httpx.Response(503), OutcomeUnknown),
    (httpx.Response(404, text="not found"), OutcomeUnknown),
    (httpx.Response(200, text="<html>busy</html>"), OutcomeUnknown),
    (httpx.Response(200, json=[1, 2]), OutcomeUnknown),
    (httpx.Response(200, json={"errcode": "what"}), OutcomeUnknown),
])
async def test_transport_failures(fake: FakeWeCom, client: WeComClient, failure: Any,
                                  cls: type[Exception]) -> None:
    fake.script(WELCOME, failure)
    with pytest.raises(cls) as caught:
        await client.call(welcome())
    assert isinstance(caught.value, WeComError) and caught.value.api == WELCOME
    assert len(fake.calls_to(WELCOME)) == 1


async def test_failure_messages_say_why(fake: FakeWeCom, client: WeComClient) -> None:
    fake.script(WELCOME, httpx.Response(502), httpx.Response(200, text="oops"),
                httpx.ReadTimeout("t"))
    messages = []
    for _ in range(3):
        with pytest.raises(OutcomeUnknown) as caught:
            await client.call(welcome())
        messages.append(str(caught.value))
    assert "HTTP 502" in messages[0] and "not JSON" in messages[1]
    assert "ReadTimeout" in messages[2]


async def test_no_token_or_url_in_errors(fake: FakeWeCom, client: WeComClient) -> None:
    await client.fetch_token("contact")  # tok-1 is the token the calls below carry
    fake.script(WELCOME,
                httpx.ReadTimeout(f"timed out: {BASE_URL}/cgi-bin/{WELCOME}?access_token=tok-1"),
                {"errcode": 40058, "errmsg": "invalid parameter for access_token tok-1"})
    for _ in range(2):
        with pytest.raises(Exception) as caught:
            await client.call(welcome())
        assert fake.last(WELCOME).token == "tok-1"
        text = str(caught.value)
        assert "tok-1" not in text and "qyapi" not in text and "access_token=" not in text
        # A chained httpx exception would print its own text (and maybe the URL) in tracebacks.
        assert caught.value.__cause__ is None
        assert caught.value.__context__ is None or caught.value.__suppress_context__


async def test_one_debug_line_per_call_and_nothing_secret(
        fake: FakeWeCom, client: WeComClient, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = LogRecorder()
    monkeypatch.setattr(client_module, "log", recorder)
    fake.script(WELCOME, 42001)
    await client.call(welcome())
    calls = [fields for level, event, fields in recorder.lines if event == "wecom_call"]
    assert [(c["api"], c["errcode"]) for c in calls] == [
        ("gettoken", 0), (WELCOME, 42001), ("gettoken", 0), (WELCOME, 0)]
    assert all(isinstance(c["elapsed_ms"], float) for c in calls)
    rendered = repr(recorder.lines)
    for secret in ("tok-1", "tok-2", *SECRETS.values(), "qyapi"):
        assert secret not in rendered


# --- group robot webhook -------------------------------------------------------------------------


async def test_webhook_uses_the_robot_key_and_no_token(fake: FakeWeCom,
                                                       client: WeComClient) -> None:
    await client.call(api.WebhookSend(
        robot="ops", msgtype="text",
        text=api.WebhookText(content="早安，今天的日程", mentioned_list=["@all"])))
    (call,) = fake.calls
    assert (call.path, call.query, call.token) == ("webhook/send", {"key": ROBOT_KEY}, None)
    assert call.body == {"msgtype": "text",
                         "text": {"content": "早安，今天的日程", "mentioned_list": ["@all"]}}
    assert "早安".encode() in call.raw


async def test_an_unknown_robot_is_named_not_sent(fake: FakeWeCom, client: WeComClient) -> None:
    with pytest.raises(NotConfigured) as caught:
        await client.call(api.WebhookSend(robot="night-shift", msgtype="text",
                                          text=api.WebhookText(content="x")))
    assert "night-shift" in str(caught.value) and ROBOT_KEY not in str(caught.value)
    assert fake.calls == []


async def test_a_removed_robot_is_a_configuration_error(fake: FakeWeCom) -> None:
    wecom = fake.wecom_client(robots={"ops": "stale-key-123"})
    fake.script("webhook/send", {"errcode": 93000, "errmsg": "invalid webhook url stale-key-123"})
    with pytest.raises(ConfigurationError) as caught:
        await wecom.call(api.WebhookSend(robot="ops", msgtype="markdown",
                                         markdown=api.Markdown(content="**hi**")))
    assert caught.value.errcode == 93000 and "stale-key-123" not in str(caught.value)


# --- typed answers from the fake's defaults -------------------------------------------------------


async def test_kf_sync_pages(fake: FakeWeCom, client: WeComClient) -> None:
    for text in ("价格", "人工", "谢谢"):
        fake.add_kf_text(text)
    first = await client.call(api.KfSyncMsg(token="cbtoken", limit=2))
    assert (first.has_more, len(first.msg_list)) == (1, 2)
    assert first.msg_list[0].text is not None and first.msg_list[0].text.content == "价格"
    second = await client.call(api.KfSyncMsg(cursor=first.next_cursor, limit=2))
    assert second.has_more == 0 and [m.text.content for m in second.msg_list if m.text] == ["谢谢"]


async def test_join_way_round_trip(fake: FakeWeCom, client: WeComClient) -> None:
    added = await client.call(api.AddJoinWay(scene=2, chat_id_list=["wr1", "wr2"],
                                             state="seg-retail-gd", auto_create_room=1,
                                             room_base_name="广东零售群",
                                             room_base_id=1))
    detail = await client.call(api.GetJoinWay(config_id=added.config_id))
    assert detail.join_way is not None
    assert detail.join_way.chat_id_list == ["wr1", "wr2"] and detail.join_way.qr_code
    await client.call(api.DelJoinWay(config_id=added.config_id))
    with pytest.raises(InvalidRequest):
        await client.call(api.GetJoinWay(config_id=added.config_id))


async def test_group_chat_detail(fake: FakeWeCom, client: WeComClient) -> None:
    fake.add_group_chat("wrA", members=[{"userid": "wmX", "type": 2, "join_scene": 3,
                                         "state": "seg1"}])
    page = await client.call(api.ListGroupChats(limit=10))
    assert [ref.chat_id for ref in page.group_chat_list] == ["wrA"] and page.next_cursor == ""
    detail = await client.call(api.GetGroupChat(chat_id="wrA", need_name=1))
    assert detail.group_chat is not None
    assert detail.group_chat.member_list[0].state == "seg1"


async def test_kf_state_transfer(client: WeComClient) -> None:
    changed = await client.call(api.KfTransServiceState(
        open_kfid="wk1", external_userid="wmA", service_state=3, servicer_userid="staff01"))
    assert changed.msg_code
    state = await client.call(api.KfGetServiceState(open_kfid="wk1",
                                                    external_userid="wmA"))
    assert (state.service_state, state.servicer_userid) == (3, "staff01")


async def test_the_fake_fails_loudly_on_an_unknown_api(fake: FakeWeCom) -> None:
    async with fake.client() as http:
        with pytest.raises(AssertionError, match="unexpected call"):
            await http.post("/cgi-bin/externalcontact/no_such_api", json={})
    assert [call.path for call in fake.unexpected] == ["externalcontact/no_such_api"]
    with pytest.raises(AssertionError):
        fake.script("externalcontact/no_such_api", 0)


# --- request models ------------------------------------------------------------------------------


def link(title: str = "福利") -> api.Attachment:
    return api.Attachment(msgtype="link", link=api.Link(title=title, url="https://x.test/w"))


@pytest.mark.parametrize("build", [
    lambda: api.SendWelcomeMsg(welcome_code="W", text=api.Text(content="字" * 1334)),  # 4002 B
    lambda: api.SendWelcomeMsg(welcome_code="W", attachments=[link()] * 10),
    lambda: api.SendWelcomeMsg(welcome_code="W"),
    lambda: api.SendWelcomeMsg(welcome_code="W", attachments=[]),
    lambda: api.Attachment(msgtype="link"),
    lambda: api.Attachment(msgtype="image", image=api.Image()),
    lambda: link("标" * 43),  # 129 bytes
    lambda: api.AddContactWay(type=1, scene=2, user=["a"], state="s" * 31),
    lambda: api.AddContactWay(type=1, scene=2, user=["a", "b"]),
    lambda: api.AddContactWay(type=2, scene=2),
    lambda: api.AddJoinWay(scene=2, chat_id_list=["c"] * 6),
    lambda: api.AddJoinWay(scene=2, chat_id_list=[]),
    lambda: api.AddJoinWay(scene=2, chat_id_list=["c"], state="渠" * 31),
    lambda: api.WebhookSend(robot="ops", msgtype="text",
                            text=api.WebhookText(content="字" * 683)),  # 2049 B
    lambda: api.WebhookSend(robot="ops", msgtype="markdown"),
    lambda: api.KfSendMsg(touser="u", open_kfid="k", msgid="has space", msgtype="text",
                          text=api.Text(content="x")),
    lambda: api.KfSendMsg(touser="u", open_kfid="k", msgid="a" * 33, msgtype="text",
                          text=api.Text(content="x")),
    lambda: api.KfSendMsg(touser="u", open_kfid="k", msgtype="msgmenu"),
    lambda: api.KfTransServiceState(open_kfid="k", external_userid="u", service_state=3),
    lambda: api.SendMessage(agentid=1, msgtype="text", text=api.Text(content="x")),
    lambda: api.SendMessage(agentid=1, touser="|".join(["u"] * 1001), msgtype="text",
                            text=api.Text(content="x")),
    lambda: api.SendMessage(agentid=1, touser="u", msgtype="text",
                            text=api.Text(content="x" * 2049)),
    lambda: api.AddMsgTemplate(chat_type="group", text=api.Text(content="x")),
    lambda: api.AddMsgTemplate(chat_id_list=["wr1"], text=api.Text(content="x")),
    lambda: api.AddGroupWelcomeTemplate(text=api.Text(content="x"),
                                        image=api.Image(media_id="m"),
                                        file=api.MediaRef(media_id="f")),
    lambda: api.AddGroupWelcomeTemplate(text=api.Text(content="字" * 1001)),  # 3003 B
    lambda: api.MarkTag(userid="s", external_userid="w"),
    lambda: api.ListGroupChats(limit=1001),
    lambda: api.CreateAppChat(userlist=["only-one"]),
    lambda: api.SendWelcomeMsg(welcome_code="W", text=api.Text(content="x"), typo=1),
])
def test_invalid_requests_fail_at_construction(build: Any) -> None:
    with pytest.raises(ValidationError):
        build()


def test_limits_are_inclusive() -> None:
    at_limit = api.SendWelcomeMsg(welcome_code="W", text=api.Text(content="字" * 1333 + "a"),
                                  attachments=[link()] * 9)
    assert at_limit.text is not None and len(at_limit.text.content.encode()) == 4000
    assert api.AddContactWay(type=1, scene=2, user=["a"], state="渠" * 30).state == "渠" * 30
    assert len(api.AddJoinWay(scene=2, chat_id_list=["c"] * 5, state="s" * 30).chat_id_list) == 5
    robot_text = api.WebhookText(content="字" * 682 + "ab")  # 2048 bytes
    assert api.WebhookSend(robot="ops", msgtype="text", text=robot_text).text == robot_text
    msgid = "Ab_-9" * 6 + "xy"  # 32 characters
    assert api.KfSendMsg(touser="u", open_kfid="k", msgid=msgid, msgtype="text",
                         text=api.Text(content="x")).msgid == msgid


def concrete_calls(cls: type = ApiCall) -> set[type]:
    """Every ApiCall subclass that names a path (not generic intermediates)."""
    found = set()
    for sub in cls.__subclasses__():
        if getattr(sub, "path", None) and sub.__pydantic_generic_metadata__["origin"] is None:
            found.add(sub)
        found |= concrete_calls(sub)
    return found


def test_api_calls_cover_every_call_class() -> None:
    assert concrete_calls() == set(API_CALLS.values())
    assert all(path == cls.path for path, cls in API_CALLS.items())
    assert len(API_CALLS) >= 37


@pytest.mark.parametrize("cls", sorted(API_CALLS.values(), key=lambda c: c.path))
def test_call_classes_are_consistent(cls: type[ApiCall[Any]]) -> None:
    secret = {"externalcontact": "contact", "kf": "kf", "webhook": None, "msgaudit": "archive"}
    assert cls.secret == secret.get(cls.path.split("/")[0], "agent")
    assert issubclass(cls, ContactCall) == (cls.secret == "contact")
    assert issubclass(cls, KfCall) == (cls.secret == "kf")
    generic_args = [meta["args"] for base in cls.__mro__
                    if (meta := getattr(base, "__pydantic_generic_metadata__", {})).get("args")]
    assert generic_args[0] == (cls.response_model,)  # ApiCall[R] and response_model agree


ROUND_TRIPS = [
    welcome("欢迎！"),
    api.SendWelcomeMsg(welcome_code="W", attachments=[
        link(), api.Attachment(msgtype="image", image=api.Image(media_id="m1")),
        api.Attachment(msgtype="miniprogram", miniprogram=api.MiniProgram(
            title="认证", pic_media_id="p", appid="wxapp", page="pages/verify"))]),
    api.WebhookSend(robot="ops", msgtype="news", news=api.News(articles=[
        api.Article(title="周历", url="https://x.test/cal")])),
    api.WebhookSend(robot="ops", msgtype="image", image=api.WebhookImage.of(b"\x89PNG...")),
    api.KfSendMsg(touser="wm", open_kfid="wk", msgid="reply-1", msgtype="msgmenu",
                  msgmenu=api.MsgMenu(head_content="请选择", items=[
                      api.MsgMenuItem(type="click", click={"id": "human", "content": "人工"})])),
    api.SendMessage(agentid=1000002, touser="op1|op2", msgtype="textcard",
                    textcard=api.TextCard(title="待审核", description="3 条", url="https://x.test",
                                          btntxt="去审核"), enable_duplicate_check=1),
    api.AddMsgTemplate(chat_type="group", sender="staff01", chat_id_list=["wr1"],
                       text=api.Text(content="早安")),
    api.AddContactWay(type=2, scene=2, user=["a", "b"], skip_verify=True, state="ch1",
                      conclusions=api.Conclusions(text=api.Text(content="再见"))),
    api.GetExternalContact(external_userid="wmA", cursor="c1"),
]


@pytest.mark.parametrize("call", ROUND_TRIPS, ids=lambda call: call.path)
def test_stored_calls_round_trip(call: ApiCall[Any]) -> None:
    # As the outbox does it: stored() to JSON text in a column, and back.
    text = json.dumps(call.stored(), ensure_ascii=False)
    assert API_CALLS[call.path].model_validate(json.loads(text)) == call


def test_webhook_body_leaves_out_the_robot_but_stored_keeps_it() -> None:
    call = api.WebhookSend(robot="ops", msgtype="text", text=api.WebhookText(content="hi"))
    assert call.stored()["robot"] == "ops"
    assert call.body() == {"msgtype": "text", "text": {"content": "hi"}}


def test_msgmenu_uses_wecoms_field_name() -> None:
    menu = api.MsgMenu(items=[api.MsgMenuItem(type="text", text={"content": "营业时间"})])
    assert menu.model_dump(by_alias=True, exclude_none=True) == {
        "list": [{"type": "text", "text": {"content": "营业时间"}}]}


@pytest.mark.parametrize(("call", "dedupable"), [
    (welcome(), True),
    (api.KfSendMsg(touser="u", open_kfid="k", msgid="m1", msgtype="text",
                   text=api.Text(content="x")), True),
    (api.KfSendMsg(touser="u", open_kfid="k", msgtype="text", text=api.Text(content="x")), False),
    (api.KfSendMsgOnEvent(code="c", msgid="m1", msgtype="text", text=api.Text(content="x")),
     True),
    (api.KfSendMsgOnEvent(code="c", msgtype="text", text=api.Text(content="x")), False),
    (api.SendMessage(agentid=1, touser="u", msgtype="text", text=api.Text(content="x"),
                     enable_duplicate_check=1), True),
    (api.SendMessage(agentid=1, touser="u", msgtype="text", text=api.Text(content="x"),
                     enable_duplicate_check=0), False),
    (api.SendMessage(agentid=1, touser="u", msgtype="text", text=api.Text(content="x")), False),
    (api.GetExternalContact(external_userid="w"), True),
    (api.ListGroupChats(), True),
    (api.KfSyncMsg(), True),
    (api.GetCorpTagList(), True),
    (api.AddMsgTemplate(external_userid=["w"], text=api.Text(content="x")), False),
    (api.RemindGroupMsgSend(msgid="m"), False),
    (api.AddContactWay(type=1, scene=2, user=["a"]), False),
    (api.WebhookSend(robot="ops", msgtype="text", text=api.WebhookText(content="x")), False),
    (api.SendAppChat(chatid="c", msgtype="text", text=api.Text(content="x")), False),
])
def test_is_dedupable(call: ApiCall[Any], dedupable: bool) -> None:
    assert call.is_dedupable() is dedupable


async def test_media_is_downloaded_and_refused_when_too_large_or_unknown() -> None:
    from app.engine.wecom.client import MediaTooLarge
    from app.engine.wecom.errors import ApiError
    from tests.fakes.wecom import FakeWeCom

    fake = FakeWeCom()
    fake.media["M1"] = b"\xff\xd8\xff" + b"x" * 100
    client = fake.wecom_client()
    assert await client.download_media("M1", max_bytes=1000) == fake.media["M1"]
    with pytest.raises(MediaTooLarge):
        await client.download_media("M1", max_bytes=50)
    with pytest.raises(ApiError) as info:
        await client.download_media("nope", max_bytes=1000)
    assert info.value.errcode == 40007
    assert fake.last("media/get").query == {"media_id": "nope"}
