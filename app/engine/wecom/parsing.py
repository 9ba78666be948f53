"""Turn a decrypted WeCom payload into a typed event (classes in `events`), and a 微信客服
message the kf reader pulled into its typed event (classes in `kf_events`).

`parse_event` never raises: an unknown MsgType/Event/ChangeType/UpdateDetail, or a known type
whose fields are missing or invalid, becomes an `UnknownEvent` with a one-line `reason` and the
whole payload in `raw`, so the inbox stores it and nothing is lost. Only malformed XML raises
(`XmlError`, from `event_from_xml`), which the callback answers with 400.

Dispatch is by table, most specific key first:
    MsgType != "event"                        → _BY_MSG_TYPE[MsgType]
    Event                                     → _BY_EVENT[Event]
    (Event, ChangeType)                       → _BY_CHANGE_TYPE[(Event, ChangeType)]
    change_external_chat/update, UpdateDetail → _BY_UPDATE_DETAIL[UpdateDetail]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from app.engine.wecom.api_kf import KfMessage
from app.engine.wecom.events import (
    ChatMemberJoined,
    ChatMemberLeft,
    ChatNameChanged,
    ChatNoticeChanged,
    ChatOwnerChanged,
    EnterAgent,
    Event,
    ExternalChatCreated,
    ExternalChatDismissed,
    ExternalChatEvent,
    ExternalChatUpdated,
    ExternalContactAdded,
    ExternalContactDeleted,
    ExternalContactEdited,
    ExternalContactEvent,
    ExternalContactHalfAdded,
    ExternalTagChanged,
    FollowUserDeleted,
    ImageMessage,
    KfAccountAuthChanged,
    KfMsgOrEvent,
    LinkMessage,
    LocationMessage,
    Message,
    MsgAuditApproved,
    MsgAuditNotify,
    TextMessage,
    TransferFailed,
    UnknownEvent,
    VideoMessage,
    VoiceMessage,
)
from app.engine.wecom.kf_events import (
    CUSTOMER,
    MEDIA_TYPES,
    KfCustomerMedia,
    KfCustomerText,
    KfOtherEvent,
    KfOtherMessage,
    KfPulled,
    KfSendFailed,
    KfSessionChanged,
    KfSessionEntered,
)
from app.engine.wecom.xmlutil import parse_xml

__all__ = [
    "ChatMemberJoined",
    "ChatMemberLeft",
    "ChatNameChanged",
    "ChatNoticeChanged",
    "ChatOwnerChanged",
    "EnterAgent",
    "Event",
    "ExternalChatCreated",
    "ExternalChatDismissed",
    "ExternalChatEvent",
    "ExternalChatUpdated",
    "ExternalContactAdded",
    "ExternalContactDeleted",
    "ExternalContactEdited",
    "ExternalContactEvent",
    "ExternalContactHalfAdded",
    "ExternalTagChanged",
    "FollowUserDeleted",
    "ImageMessage",
    "KfAccountAuthChanged",
    "KfMsgOrEvent",
    "MsgAuditNotify",
    "LinkMessage",
    "LocationMessage",
    "Message",
    "MsgAuditApproved",
    "TextMessage",
    "TransferFailed",
    "UnknownEvent",
    "VideoMessage",
    "VoiceMessage",
    "event_from_xml",
    "parse_event",
]

_BY_MSG_TYPE: dict[str, type[Event]] = {
    "text": TextMessage,
    "image": ImageMessage,
    "voice": VoiceMessage,
    "video": VideoMessage,
    "location": LocationMessage,
    "link": LinkMessage,
}

_BY_EVENT: dict[str, type[Event]] = {
    "enter_agent": EnterAgent,
    "change_external_tag": ExternalTagChanged,
    "kf_msg_or_event": KfMsgOrEvent,
    "kf_account_auth_change": KfAccountAuthChanged,
    "msgaudit_notify": MsgAuditNotify,
}

_BY_CHANGE_TYPE: dict[tuple[str, str], type[Event]] = {
    ("change_external_contact", "add_external_contact"): ExternalContactAdded,
    ("change_external_contact", "add_half_external_contact"): ExternalContactHalfAdded,
    ("change_external_contact", "edit_external_contact"): ExternalContactEdited,
    ("change_external_contact", "del_external_contact"): ExternalContactDeleted,
    ("change_external_contact", "del_follow_user"): FollowUserDeleted,
    ("change_external_contact", "transfer_fail"): TransferFailed,
    ("change_external_contact", "msg_audit_approved"): MsgAuditApproved,
    ("change_external_chat", "create"): ExternalChatCreated,
    ("change_external_chat", "dismiss"): ExternalChatDismissed,
    ("change_external_chat", "update"): ExternalChatUpdated,
}
_EVENTS_WITH_CHANGE_TYPE = frozenset(event for event, _ in _BY_CHANGE_TYPE)

_BY_UPDATE_DETAIL: dict[str, type[ExternalChatUpdated]] = {
    "add_member": ChatMemberJoined,
    "del_member": ChatMemberLeft,
    "change_owner": ChatOwnerChanged,
    "change_name": ChatNameChanged,
    "change_notice": ChatNoticeChanged,
}

_MAX_SHOWN = 40  # longest value quoted in a reason; the payload itself stays in `raw`


def event_from_xml(data: bytes | str) -> Event:
    """Parse a decrypted plaintext; `XmlError` propagates (the callback answers 400)."""
    return parse_event(parse_xml(data))


def event_from_payload(payload: str) -> Event:
    """An inbox row's event: a callback's XML, or a kf message pulled with kf/sync_msg (JSON)."""
    if payload.startswith("{"):
        return kf_event_from_json(payload)
    return event_from_xml(payload)


def parse_event(fields: dict[str, Any]) -> Event:
    """The typed event for `fields`, or an `UnknownEvent` saying why none fits. Never raises."""
    if not isinstance(fields, Mapping):
        return _unknown({}, f"payload is a {type(fields).__name__}, not a mapping")
    fields = dict(fields)
    resolved = _resolve(fields)
    if isinstance(resolved, str):
        return _unknown(fields, resolved)
    try:
        return resolved.model_validate({**fields, "raw": fields})
    except ValidationError as exc:
        return _unknown(fields, _summarise(resolved, exc))


def _resolve(fields: dict[str, Any]) -> type[Event] | str:
    """The class for this payload, or the reason there is none."""
    msg_type = _text(fields, "MsgType")
    if msg_type != "event":
        by_msg_type = _BY_MSG_TYPE.get(msg_type) if msg_type is not None else None
        return by_msg_type or _unknown_value("MsgType", msg_type)
    event = _text(fields, "Event")
    if event in _BY_EVENT:
        return _BY_EVENT[event]
    if event is None or event not in _EVENTS_WITH_CHANGE_TYPE:
        return _unknown_value("Event", event)
    change_type = _text(fields, "ChangeType")
    cls = _BY_CHANGE_TYPE.get((event, change_type)) if change_type is not None else None
    if cls is None:
        return _unknown_value("ChangeType", change_type, f" for {event}")
    if cls is ExternalChatUpdated:
        return _resolve_update(fields)
    return cls


def _resolve_update(fields: dict[str, Any]) -> type[Event] | str:
    detail = _text(fields, "UpdateDetail")
    cls = _BY_UPDATE_DETAIL.get(detail) if detail is not None else None
    return cls or _unknown_value("UpdateDetail", detail, " for change_external_chat update")


def _text(fields: dict[str, Any], tag: str) -> str | None:
    """The tag's value if it is text, else None (absent, or a list/dict from odd XML)."""
    value = fields.get(tag)
    return value if isinstance(value, str) else None


def _unknown_value(tag: str, value: str | None, where: str = "") -> str:
    if value is None:
        return f"missing {tag}{where}"
    return f"unknown {tag} {_quote(value)}{where}"


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _summarise(cls: type[Event], exc: ValidationError) -> str:
    """One line naming each bad field and what is wrong with it (not its value)."""
    problems = [f"{_loc(err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)]
    return f"invalid {cls.__name__}: " + "; ".join(problems).replace("\n", " ")


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "payload"


def _unknown(fields: dict[Any, Any], reason: str) -> UnknownEvent:
    """Common fields taken leniently: whatever is missing or malformed gets its default."""
    return UnknownEvent(
        reason=reason, raw=fields,
        to_user_name=_text(fields, "ToUserName") or "",
        from_user_name=_text(fields, "FromUserName") or "",
        create_time=_int(fields.get("CreateTime")) or 0,
        msg_type=_text(fields, "MsgType") or "",
        event=_text(fields, "Event") or "",
        agent_id=_int(fields.get("AgentID")),
    )


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        return None


# --- 微信客服 messages pulled by the kf reader (kf/sync_msg), stored as JSON --------------

_KF_BY_EVENT: dict[str, type[KfPulled]] = {"enter_session": KfSessionEntered,
                                           "msg_send_fail": KfSendFailed,
                                           "session_status_change": KfSessionChanged}


def kf_event(message: KfMessage) -> KfPulled:
    """The typed event for one pulled message."""
    if message.event is not None:
        cls = _KF_BY_EVENT.get(message.event.event_type, KfOtherEvent)
    elif message.origin == CUSTOMER and message.msgtype == "text":
        cls = KfCustomerText
    elif message.origin == CUSTOMER and message.msgtype in MEDIA_TYPES:
        cls = KfCustomerMedia
    else:
        cls = KfOtherMessage
    return cls(message=message, create_time=message.send_time or 0,
               msg_type=message.msgtype, raw=message.model_dump(mode="json"))


def kf_event_from_json(payload: str) -> Event:
    """A stored kf message back as its event; an UnknownEvent if it no longer parses."""
    try:
        return kf_event(KfMessage.model_validate_json(payload))
    except ValidationError as exc:
        reason = f"invalid kf message: {exc.errors(include_url=False)[0]['msg']}"
        return UnknownEvent(reason=reason, raw={"payload": payload[:2000]})


def stored(message: KfMessage) -> str:
    """The inbox payload of a pulled message (its JSON, as WeCom sent it)."""
    return message.model_dump_json(exclude_none=True)
