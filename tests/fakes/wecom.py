"""A fake WeCom at the transport seam (DESIGN §7): an `httpx.MockTransport` that routes by API
path, records every call, answers like WeCom by default and plays scripted answers first.

    fake = FakeWeCom()
    client = fake.wecom_client()                  # a WeComClient with in-memory tokens
    fake.script("externalcontact/send_welcome_msg", -1, httpx.ReadTimeout("lost"))
    ...
    (call,) = fake.calls_to("externalcontact/send_welcome_msg")
    assert call.body["welcome_code"] == "WC1"

Defaults follow the platform where it is cheap: gettoken hands out "tok-1", "tok-2", … and the
same token until it is expired; API calls need a live token (41001 without one, 40014 for an
unknown one); a welcome code works once (41051 after); 联系我 / 加入群聊 configs, customer
groups, tags, welcome templates and kf sessions are kept so get/update/del see earlier adds.
An unknown path raises AssertionError, which fails the test instead of answering "ok".
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from app.engine.wecom.client import WeComClient

BASE_URL = "https://qyapi.weixin.qq.com"
STAFF = "staff01"
# A scripted answer: an errcode, a JSON body (errcode 0 unless it says otherwise), a whole
# response, or an exception for the transport to raise (httpx.ConnectError, ReadTimeout, …).
Answer = int | dict[str, Any] | httpx.Response | BaseException
Json = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """One request as WeCom received it."""

    method: str
    path: str  # after /cgi-bin/
    query: dict[str, str]  # without access_token
    token: str | None  # the access_token, if any
    body: Any  # parsed JSON; None for GET and multipart
    raw: bytes  # the bytes on the wire
    headers: httpx.Headers


def error(errcode: int, errmsg: str = "") -> Json:
    return {"errcode": errcode, "errmsg": errmsg or f"fake errcode {errcode}"}


class MemoryTokens:
    """A TokenProvider in memory that fetches through the client (the real, database-backed
    one is app.engine.wecom.tokens.TokenStore)."""

    def __init__(self, client: WeComClient | None = None) -> None:
        self.client = client
        self.current: dict[str, str] = {}
        self.fetches = 0
        self.refreshes = 0

    async def get(self, secret: str) -> str:
        if secret not in self.current:
            await self._fetch(secret)
        return self.current[secret]

    async def refresh(self, secret: str, rejected: str) -> str:
        self.refreshes += 1
        if self.current.get(secret) in (None, rejected):
            await self._fetch(secret)
        return self.current[secret]

    async def _fetch(self, secret: str) -> None:
        assert self.client is not None, "MemoryTokens.client is not set"
        self.current[secret], _ = await self.client.fetch_token(secret)
        self.fetches += 1


class FakeWeCom:
    """Fake WeCom server APIs. `corp_id` / `secrets` / `robot_keys` left as None accept any."""

    def __init__(self, *, corp_id: str | None = None, secrets: Iterable[str] | None = None,
                 robot_keys: Iterable[str] | None = None) -> None:
        self.corp_id = corp_id
        self.secrets = None if secrets is None else set(secrets)
        self.robot_keys = None if robot_keys is None else set(robot_keys)
        self.calls: list[Call] = []
        # Calls to paths the fake does not know; also raised, but code under test may catch.
        self.unexpected: list[Call] = []
        self.transport = httpx.MockTransport(self._handle)
        self._scripts: dict[str, deque[Answer]] = defaultdict(deque)
        self._serial = itertools.count(1)
        self._token_serial = itertools.count(1)
        self._live: dict[str, str] = {}  # corpsecret → its current token
        self._rejected: dict[str, int] = {}  # expired token → the errcode it now gets
        # Platform state, seedable by tests.
        self.welcome_codes_used: set[str] = set()
        self.contacts: dict[str, Json] = {}  # external_userid → externalcontact/get answer
        self.contact_ways: dict[str, Json] = {}
        self.join_ways: dict[str, Json] = {}
        self.group_chats: dict[str, Json] = {}
        self.tag_groups: list[Json] = []
        self.welcome_templates: dict[str, Json] = {}
        self.kf_messages: list[Json] = []
        self.media: dict[str, bytes] = {}  # media/get serves these
        self.kf_states: dict[tuple[str, str], Json] = {}
        self.routes: dict[str, Callable[[Call], Json]] = self._default_routes()

    # --- test helpers --------------------------------------------------------------------------

    def client(self, base_url: str = BASE_URL, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport, base_url=base_url, **kwargs)

    def wecom_client(self, *, corp_id: str | None = None,
                     secrets: Mapping[str, SecretStr | None] | None = None,
                     robots: Mapping[str, str] | None = None) -> WeComClient:
        """A WeComClient on this fake, with MemoryTokens wired in (client.tokens)."""
        secrets = secrets or {name: SecretStr(f"{name}-secret") for name in ("agent", "contact",
                                                                              "kf")}
        client = WeComClient(self.client(), base_url=BASE_URL,
                             corp_id=corp_id or self.corp_id or "wwcorp", secrets=secrets,
                             robots=robots)
        client.tokens = MemoryTokens(client)
        return client

    def script(self, path: str, *answers: Answer) -> None:
        """Answer the next calls to `path` with these, in order; then the defaults again."""
        assert path in self.routes, f"FakeWeCom has no API {path!r}"
        self._scripts[path].extend(answers)

    def expire_tokens(self, errcode: int = 42001) -> None:
        """Every live token is rejected from now on with `errcode`; gettoken issues new ones."""
        self._rejected.update(dict.fromkeys(self._live.values(), errcode))
        self._live.clear()

    def calls_to(self, path: str) -> list[Call]:
        return [call for call in self.calls if call.path == path]

    def last(self, path: str) -> Call:
        calls = self.calls_to(path)
        assert calls, f"no call to {path}"
        return calls[-1]

    def add_group_chat(self, chat_id: str | None = None, *, owner: str = STAFF,
                       members: Iterable[Json] = (), **fields: Any) -> Json:
        chat_id = chat_id or f"wrFAKE{next(self._serial):08d}"
        self.group_chats[chat_id] = {"chat_id": chat_id, "name": "客户群", "owner": owner,
                                     "create_time": int(time.time()), "notice": "",
                                     "member_list": list(members), "admin_list": [], **fields}
        return self.group_chats[chat_id]

    def add_kf_text(self, content: str, *, external_userid: str = "wmFAKEkf",
                    open_kfid: str = "wkFAKEkf", **fields: Any) -> Json:
        """A customer's text message, waiting for the next kf/sync_msg."""
        message = {"msgid": f"kfin{next(self._serial):08d}", "open_kfid": open_kfid,
                   "external_userid": external_userid, "send_time": int(time.time()),
                   "origin": 3, "msgtype": "text", "text": {"content": content}, **fields}
        self.kf_messages.append(message)
        return message

    # --- the transport -------------------------------------------------------------------------

    def _handle(self, request: httpx.Request) -> httpx.Response:
        call = _record(request)
        self.calls.append(call)
        if call.path not in self.routes:
            self.unexpected.append(call)
            raise AssertionError(f"FakeWeCom: unexpected call to {call.path!r}")
        if self._scripts[call.path]:
            return _response(self._scripts[call.path].popleft())
        return _response(self.routes[call.path](call))

    def _authorized(self, handler: Callable[[Call], Json]) -> Callable[[Call], Json]:
        def check(call: Call) -> Json:
            if not call.token:
                return error(41001, "access_token missing")
            if call.token in self._rejected:
                return error(self._rejected[call.token], "access_token expired")
            if call.token not in self._live.values():
                return error(40014, "invalid access_token")
            return handler(call)
        return check

    def _default_routes(self) -> dict[str, Callable[[Call], Json]]:
        routes: dict[str, Callable[[Call], Json]] = {
            "message/send": lambda call: {"invaliduser": "", "invalidparty": "",
                                          "invalidtag": "", "msgid": self._id("msg")},
            "appchat/create": lambda call: {"chatid": call.body.get("chatid")
                                            or self._id("chat")},
            "appchat/send": _ok,
            "media/upload": lambda call: {"type": call.query.get("type", ""),
                                          "media_id": self._id("MEDIA"),
                                          "created_at": str(int(time.time()))},
            "media/get": self._media_get,  # type: ignore[dict-item]
            **self._contact_routes(), **self._outreach_routes(), **self._kf_routes(),
        }
        routes = {path: self._authorized(handler) for path, handler in routes.items()}
        return {"gettoken": self._gettoken, "webhook/send": self._webhook, **routes}

    def _gettoken(self, call: Call) -> Json:
        if self.corp_id is not None and call.query.get("corpid") != self.corp_id:
            return error(40013, "invalid corpid")
        secret = call.query.get("corpsecret", "")
        if not secret or (self.secrets is not None and secret not in self.secrets):
            return error(40001, "invalid credential")
        if secret not in self._live:  # the same token until it expires
            self._live[secret] = f"tok-{next(self._token_serial)}"
        return {"access_token": self._live[secret], "expires_in": 7200}

    def _webhook(self, call: Call) -> Json:
        key = call.query.get("key")
        if not key or (self.robot_keys is not None and key not in self.robot_keys):
            return error(93000, "invalid webhook url")
        return {}

    # --- 客户联系 --------------------------------------------------------------------------------

    def _contact_routes(self) -> dict[str, Callable[[Call], Json]]:
        cw, jw = "externalcontact/", "externalcontact/groupchat/"
        return {
            cw + "send_welcome_msg": self._welcome,
            cw + "get": self._external_contact,
            cw + "add_contact_way": lambda call: self._add_config(
                self.contact_ways, call.body, "cw", qr=call.body.get("scene") == 2),
            cw + "get_contact_way": lambda call: self._get_config(
                self.contact_ways, call.body, "contact_way"),
            cw + "update_contact_way": lambda call: self._update(self.contact_ways, call.body),
            cw + "del_contact_way": lambda call: self._delete(self.contact_ways, call.body),
            jw + "list": self._list_group_chats,
            jw + "get": lambda call: {"group_chat": self.group_chats.get(call.body["chat_id"])
                                      or self.add_group_chat(call.body["chat_id"])},
            jw + "add_join_way": lambda call: {"config_id": self._add_config(
                self.join_ways, call.body, "jw", qr=True)["config_id"]},
            jw + "get_join_way": lambda call: self._get_config(
                self.join_ways, call.body, "join_way"),
            jw + "update_join_way": lambda call: self._update(self.join_ways, call.body),
            jw + "del_join_way": lambda call: self._delete(self.join_ways, call.body),
        }

    def _welcome(self, call: Call) -> Json:
        code = call.body["welcome_code"]
        if code in self.welcome_codes_used:  # single use: another sender was first
            return error(41051, "customer already received a welcome message")
        self.welcome_codes_used.add(code)
        return {}

    def _external_contact(self, call: Call) -> Json:
        euid = call.query["external_userid"]
        return self.contacts.get(euid) or {
            "external_contact": {"external_userid": euid, "name": "客户", "type": 1,
                                 "gender": 0},
            "follow_user": [{"userid": STAFF, "remark": "", "createtime": int(time.time()),
                             "tags": [], "add_way": 1, "state": ""}]}

    def _add_config(self, store: dict[str, Json], body: Json, prefix: str, qr: bool) -> Json:
        config_id = self._id(prefix)
        store[config_id] = {**body, "config_id": config_id}
        if qr:
            store[config_id]["qr_code"] = f"https://wework.qpic.cn/fake/{config_id}.png"
        return {key: store[config_id][key] for key in ("config_id", "qr_code")
                if key in store[config_id]}

    def _get_config(self, store: dict[str, Json], body: Json, key: str) -> Json:
        config = store.get(body["config_id"])
        return {key: config} if config else error(40058, "invalid config_id")

    def _update(self, store: dict[str, Json], body: Json, key: str = "config_id") -> Json:
        if body[key] not in store:
            return error(40058, f"invalid {key}")
        store[body[key]].update(body)
        return {}

    def _delete(self, store: dict[str, Json], body: Json, key: str = "config_id") -> Json:
        return {} if store.pop(body[key], None) else error(40058, f"invalid {key}")

    def _list_group_chats(self, call: Call) -> Json:
        owners = set(call.body.get("owner_filter", {}).get("userid_list", []))
        chats = [c for c in self.group_chats.values() if not owners or c["owner"] in owners]
        start = int(call.body.get("cursor") or 0)
        end = start + call.body["limit"]
        return {"group_chat_list": [{"chat_id": c["chat_id"], "status": 0}
                                    for c in chats[start:end]],
                "next_cursor": str(end) if end < len(chats) else ""}

    def _outreach_routes(self) -> dict[str, Callable[[Call], Json]]:
        cw, tpl = "externalcontact/", "externalcontact/group_welcome_template/"
        return {
            cw + "mark_tag": _ok,
            cw + "get_corp_tag_list": self._corp_tags,
            cw + "add_corp_tag": self._add_corp_tag,
            cw + "edit_corp_tag": _ok,
            cw + "del_corp_tag": _ok,
            cw + "add_msg_template": lambda call: {"fail_list": [], "msgid": self._id("msgTPL")},
            cw + "get_groupmsg_list_v2": lambda call: {"group_msg_list": [], "next_cursor": ""},
            cw + "get_groupmsg_task": lambda call: {"task_list": [], "next_cursor": ""},
            cw + "get_groupmsg_send_result": lambda call: {"send_list": [], "next_cursor": ""},
            cw + "remind_groupmsg_send": _ok,
            cw + "cancel_groupmsg_send": _ok,
            tpl + "add": self._add_template,
            tpl + "edit": lambda call: self._update(self.welcome_templates, call.body,
                                                    "template_id"),
            tpl + "get": lambda call: (self.welcome_templates.get(call.body["template_id"])
                                       or error(40058, "invalid template_id")),
            tpl + "del": lambda call: self._delete(self.welcome_templates, call.body,
                                                   "template_id"),
        }

    def _corp_tags(self, call: Call) -> Json:
        wanted = set(call.body.get("group_id") or [])
        return {"tag_group": [g for g in self.tag_groups if not wanted or g["group_id"] in wanted]}

    def _add_corp_tag(self, call: Call) -> Json:
        body, now = call.body, int(time.time())
        group = next((g for g in self.tag_groups if g["group_id"] == body.get("group_id")), None)
        if group is None:
            group = {"group_id": self._id("etGRP"), "group_name": body.get("group_name", ""),
                     "create_time": now, "order": body.get("order", 0), "tag": []}
            self.tag_groups.append(group)
        added = [{"id": self._id("etTAG"), "name": t["name"], "create_time": now,
                  "order": t.get("order", 0)} for t in body["tag"]]
        group["tag"].extend(added)
        return {"tag_group": {**group, "tag": added}}

    def _add_template(self, call: Call) -> Json:
        template_id = self._id("tpl")
        self.welcome_templates[template_id] = {**call.body, "template_id": template_id}
        return {"template_id": template_id}

    # --- 微信客服 --------------------------------------------------------------------------------

    def _media_get(self, call: Call) -> Json | httpx.Response:
        content = self.media.get(call.query.get("media_id", ""))
        if content is None:
            return error(40007, "invalid media_id")
        return httpx.Response(200, content=content, headers={"Content-Type": "image/jpeg"})

    def _kf_routes(self) -> dict[str, Callable[[Call], Json]]:
        return {
            "kf/sync_msg": self._kf_sync,
            "kf/send_msg": lambda call: {"msgid": call.body.get("msgid") or self._id("kfout")},
            "kf/send_msg_on_event": lambda call: {"msgid": call.body.get("msgid")
                                                  or self._id("kfout")},
            "kf/service_state/get": lambda call: self.kf_states.get(
                (call.body["open_kfid"], call.body["external_userid"]), {"service_state": 0}),
            "kf/service_state/trans": self._kf_trans,
            "kf/add_contact_way": lambda call: {
                "url": f"https://work.weixin.qq.com/kfid/{call.body['open_kfid']}"
                       + (f"?enc_scene={call.body['scene']}" if "scene" in call.body else "")},
        }

    def _kf_sync(self, call: Call) -> Json:
        """Pages over kf_messages; the cursor is the index of the next message."""
        start = int(call.body.get("cursor") or 0)
        end = min(start + call.body.get("limit", 1000), len(self.kf_messages))
        return {"next_cursor": str(end), "has_more": int(end < len(self.kf_messages)),
                "msg_list": self.kf_messages[start:end]}

    def _kf_trans(self, call: Call) -> Json:
        body = call.body
        state = {"service_state": body["service_state"]}
        if "servicer_userid" in body:
            state["servicer_userid"] = body["servicer_userid"]
        self.kf_states[(body["open_kfid"], body["external_userid"])] = state
        return {"msg_code": self._id("MSGCODE")} if body["service_state"] in (2, 3, 4) else {}

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._serial):08d}"


def _ok(call: Call) -> Json:
    return {}


def _record(request: httpx.Request) -> Call:
    prefix = "/cgi-bin/"
    if not request.url.path.startswith(prefix):
        raise AssertionError(f"FakeWeCom: {request.url.path!r} is not under {prefix}")
    query = dict(request.url.params)
    token = query.pop("access_token", None)
    raw = request.content
    body = None
    if request.headers.get("content-type", "").startswith("application/json"):
        body = json.loads(raw.decode("utf-8"))
    return Call(request.method, request.url.path.removeprefix(prefix), query, token, body, raw,
                request.headers)


def _response(answer: Answer | Json) -> httpx.Response:
    if isinstance(answer, BaseException):
        raise answer
    if isinstance(answer, httpx.Response):
        return answer
    body = error(answer) if isinstance(answer, int) else {"errcode": 0, "errmsg": "ok", **answer}
    return httpx.Response(200, content=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                          headers={"Content-Type": "application/json; charset=utf-8"})
