"""Builders of decrypted WeCom callback plaintexts (`wecom-reference.md` §4.1-4.7).

Each returns the XML WeCom would encrypt: strings in CDATA, numbers bare, tags and order as
documented. Ids that must differ between calls (MsgId, ExternalUserID, WelcomeCode, Token, …)
are fresh on every call unless given. Extra keyword arguments add or override tags by WeCom name;
an override of `None` removes the tag (to build payloads with a field missing).
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

from app.engine.wecom.xmlutil import build_xml

CORP_ID = "wwcorp"
AGENT_ID = 1000002
STAFF = "staff01"
_AUTO: Any = object()  # "generate a realistic value"; None means "leave the tag out"
_serial = itertools.count(1)


def next_msg_id() -> int:
    """A fresh 19-digit MsgId (64-bit, as WeCom sends)."""
    return 7_300_000_000_000_000_000 + next(_serial)


def next_external_user_id() -> str:
    return f"wmFAKE{next(_serial):010d}"


def next_welcome_code() -> str:
    return f"WELCOME{next(_serial):010d}"


def next_chat_id() -> str:
    return f"wrFAKE{next(_serial):010d}"


def _now(create_time: int | None) -> int:
    return int(time.time()) if create_time is None else create_time


def _xml(fields: dict[str, Any], extra: dict[str, Any], bare: tuple[str, ...] = ()) -> str:
    for tag, value in extra.items():
        fields[tag] = value
    kept = {tag: value for tag, value in fields.items() if value is not None}
    return _unwrap_cdata(build_xml(kept), bare)


def _unwrap_cdata(xml: str, tags: tuple[str, ...]) -> str:
    # build_xml has no bare form for floats; WeCom sends Location_X/Y as bare numbers.
    for tag in tags:
        xml = re.sub(rf"<{tag}><!\[CDATA\[(.*?)\]\]></{tag}>", rf"<{tag}>\1</{tag}>", xml)
    return xml


def _header(corp_id: str, from_user: str | None, create_time: int | None,
            msg_type: str) -> dict[str, Any]:
    """The common fields every payload starts with (reference §4.1); kf events have no sender
    (None leaves the tag out)."""
    return {"ToUserName": corp_id, "FromUserName": from_user,
            "CreateTime": _now(create_time), "MsgType": msg_type}


def _msg_id(msg_id: int | str | None) -> int | str:
    if msg_id is None:
        return next_msg_id()
    return int(msg_id) if str(msg_id).isdigit() else msg_id


def _message(
    msg_type: str,
    body: dict[str, Any],
    from_user: str = "op1",
    msg_id: int | str | None = None,
    agent_id: int = AGENT_ID,
    corp_id: str = CORP_ID,
    create_time: int | None = None,
    **extra: Any,
) -> str:
    """A member → app message; keyword arguments past the common ones add or override tags."""
    fields = {**_header(corp_id, from_user, create_time, msg_type), **body,
              "MsgId": _msg_id(msg_id), "AgentID": agent_id}
    return _xml(fields, extra, bare=("Location_X", "Location_Y"))


# --- member → app messages (§4.2) -------------------------------------------------------------
# Each builder takes its own body fields, then the common ones of _message (from_user, msg_id,
# agent_id, corp_id, create_time) and extra tags as keyword arguments.


def text_message(content: str = "/help", **common: Any) -> str:
    return _message("text", {"Content": content}, **common)


def image_message(pic_url: str = "https://wework.qpic.cn/fake/image.jpg",
                  media_id: str = "MEDIA_IMAGE_1", **common: Any) -> str:
    return _message("image", {"PicUrl": pic_url, "MediaId": media_id}, **common)


def voice_message(media_id: str = "MEDIA_VOICE_1", format: str = "amr", **common: Any) -> str:
    return _message("voice", {"MediaId": media_id, "Format": format}, **common)


def video_message(media_id: str = "MEDIA_VIDEO_1", thumb_media_id: str = "MEDIA_THUMB_1",
                  **common: Any) -> str:
    return _message("video", {"MediaId": media_id, "ThumbMediaId": thumb_media_id}, **common)


def location_message(location_x: float = 31.230416, location_y: float = 121.473701,
                     scale: int = 15, label: str = "上海市黄浦区人民大道", **common: Any) -> str:
    body = {"Location_X": str(location_x), "Location_Y": str(location_y), "Scale": scale,
            "Label": label}
    return _message("location", body, **common)


def link_message(title: str = "活动报名", description: str = "本周六线下交流会",
                 url: str = "https://example.com/event",
                 pic_url: str = "https://example.com/cover.png", **common: Any) -> str:
    body = {"Title": title, "Description": description, "Url": url, "PicUrl": pic_url}
    return _message("link", body, **common)


# --- app events (§4.3) -------------------------------------------------------------------------


def enter_agent(
    from_user: str = "op1",
    agent_id: int = AGENT_ID,
    corp_id: str = CORP_ID,
    create_time: int | None = None,
    **extra: Any,
) -> str:
    fields = {**_header(corp_id, from_user, create_time, "event"), "Event": "enter_agent",
              "EventKey": "", "AgentID": agent_id}
    return _xml(fields, extra)


def _system_event(event: str, corp_id: str, create_time: int | None) -> dict[str, Any]:
    return {**_header(corp_id, "sys", create_time, "event"), "Event": event}


# --- customer relationship (§4.4) --------------------------------------------------------------

_WITH_WELCOME_CODE = {"add_external_contact", "add_half_external_contact", "msg_audit_approved"}


def external_contact(
    change_type: str = "add_external_contact",
    user_id: str = STAFF,
    external_user_id: str | None = None,
    state: str | None = None,
    welcome_code: str | None = _AUTO,
    corp_id: str = CORP_ID,
    create_time: int | None = None,
    **extra: Any,
) -> str:
    """Add events carry a fresh WelcomeCode unless `welcome_code=None`; State only if given."""
    fields = _system_event("change_external_contact", corp_id, create_time)
    fields["ChangeType"] = change_type
    fields["UserID"] = user_id
    fields["ExternalUserID"] = external_user_id or next_external_user_id()
    fields["State"] = state
    if welcome_code is _AUTO:
        welcome_code = next_welcome_code() if change_type in _WITH_WELCOME_CODE else None
    fields["WelcomeCode"] = welcome_code
    return _xml(fields, extra)


# --- customer groups (§4.5) --------------------------------------------------------------------


def external_chat(
    change_type: str = "update",
    chat_id: str | None = None,
    update_detail: str = "add_member",
    join_scene: int | None = _AUTO,
    quit_scene: int | None = _AUTO,
    mem_change_list: list[str] | None = _AUTO,
    last_mem_ver: str | None = _AUTO,
    cur_mem_ver: str | None = _AUTO,
    corp_id: str = CORP_ID,
    create_time: int | None = None,
    **extra: Any,
) -> str:
    """create/dismiss carry only ChatId; member updates add scene, count, list and versions."""
    fields = _system_event("change_external_chat", corp_id, create_time)
    fields["ChatId"] = chat_id or next_chat_id()
    fields["ChangeType"] = change_type
    if change_type == "update":
        fields.update(_update_fields(update_detail, join_scene, quit_scene, mem_change_list))
        versioned = update_detail in ("add_member", "del_member")
        fields["LastMemVer"] = _auto(last_mem_ver, lambda: _mem_ver() if versioned else None)
        fields["CurMemVer"] = _auto(cur_mem_ver, lambda: _mem_ver() if versioned else None)
    return _xml(fields, extra)


def _update_fields(
    detail: str, join_scene: Any, quit_scene: Any, members: Any
) -> dict[str, Any]:
    joins, leaves = detail == "add_member", detail == "del_member"
    if members is _AUTO:
        members = [next_external_user_id()] if joins or leaves else None
    return {
        "UpdateDetail": detail,
        "JoinScene": _auto(join_scene, lambda: 0 if joins else None),
        "QuitScene": _auto(quit_scene, lambda: 0 if leaves else None),
        "MemChangeCnt": None if members is None else len(members),
        "MemChangeList": members,
    }


def _auto(value: Any, make: Any) -> Any:
    return make() if value is _AUTO else value


def _mem_ver() -> str:
    return f"{next(_serial):032x}"


# --- tags, 微信客服 (§4.6, §4.7) -----------------------------------------------------------------


def external_tag(
    tag_id: str = "etFAKETAG0001",
    tag_type: str = "tag",
    change_type: str = "create",
    strategy_id: str | None = None,
    corp_id: str = CORP_ID,
    create_time: int | None = None,
    **extra: Any,
) -> str:
    fields = _system_event("change_external_tag", corp_id, create_time)
    fields.update(Id=tag_id, TagType=tag_type, ChangeType=change_type, StrategyId=strategy_id)
    return _xml(fields, extra)


def kf_msg_or_event(
    token: str | None = None,
    open_kf_id: str = "wkFAKEKF0001",
    corp_id: str = CORP_ID,
    create_time: int | None = None,
    **extra: Any,
) -> str:
    """No FromUserName, no content: the app pulls with kf/sync_msg(token)."""
    fields = {
        **_header(corp_id, None, create_time, "event"),
        "Event": "kf_msg_or_event",
        "Token": token or f"ENCFAKETOKEN{next(_serial):010d}",
        "OpenKfId": open_kf_id,
    }
    return _xml(fields, extra)


def kf_account_auth_change(
    auth_add_open_kf_id: str | None = "wkFAKEKF0002",
    auth_del_open_kf_id: str | None = None,
    corp_id: str = CORP_ID,
    create_time: int | None = None,
    **extra: Any,
) -> str:
    fields = {
        **_header(corp_id, None, create_time, "event"),
        "Event": "kf_account_auth_change",
        "AuthAddOpenKfId": auth_add_open_kf_id,
        "AuthDelOpenKfId": auth_del_open_kf_id,
    }
    return _xml(fields, extra)


def msgaudit_notify(corp_id: str = CORP_ID, create_time: int | None = None,
                    **extra: Any) -> str:
    """The chat archive has new data (wecom-reference §5.15)."""
    fields = {**_header(corp_id, None, create_time, "event"), "Event": "msgaudit_notify"}
    return _xml(fields, extra)
