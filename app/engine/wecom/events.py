"""Typed events for WeCom's decrypted callback payloads (`wecom-reference.md` §4.1-4.7).

Field names are snake_case; each alias is WeCom's tag name, so a model validates straight from
the dict `xmlutil.parse_xml` returns. Numbers arrive as text and are coerced; `MsgId` stays a
string because it is a 64-bit id. Every event keeps the whole original dict in `raw`, so nothing
WeCom sent is lost even when a field is not modelled.

    Event
    ├── Message (accepts_reply)   TextMessage ImageMessage VoiceMessage VideoMessage
    │                             LocationMessage LinkMessage
    ├── EnterAgent
    ├── ExternalContactEvent      ExternalContactAdded ExternalContactHalfAdded
    │                             ExternalContactEdited ExternalContactDeleted FollowUserDeleted
    │                             TransferFailed MsgAuditApproved
    ├── ExternalChatEvent         ExternalChatCreated ExternalChatDismissed
    │   └── ExternalChatUpdated   ChatMemberJoined ChatMemberLeft ChatOwnerChanged
    │                             ChatNameChanged ChatNoticeChanged
    ├── ExternalTagChanged
    ├── KfMsgOrEvent
    ├── KfAccountAuthChanged
    ├── MsgAuditNotify
    └── UnknownEvent              anything unrecognised or invalid, with a `reason`
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

MAX_DEDUPE_KEY_LEN = 80


def _blank_to_none(value: Any) -> Any:
    # WeCom sometimes sends an empty element where a value is absent; both mean "no value".
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _as_item_list(value: Any) -> Any:
    # An empty <MemChangeList/> parses as "" (or whitespace), not as a list.
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    return value


OptionalInt = Annotated[int | None, BeforeValidator(_blank_to_none)]
OptionalStr = Annotated[str | None, BeforeValidator(_blank_to_none)]
ItemList = Annotated[list[str], BeforeValidator(_as_item_list)]


def canonical_json(value: Any) -> str:
    """One text per payload: sorted keys, no spaces, scalars as text (XML has no number type)."""
    return json.dumps(_normalise(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _normalise(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(item) for item in value]
    return value if isinstance(value, str) else str(value)


def sha256_key(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


class Event(BaseModel):
    """Fields common to every in-house callback (§4.1)."""

    model_config = ConfigDict(
        frozen=True, populate_by_name=True, extra="ignore", coerce_numbers_to_str=True
    )

    KIND: ClassVar[str] = "event"
    accepts_reply: ClassVar[bool] = False

    to_user_name: str = Field(alias="ToUserName")
    from_user_name: str = Field("", alias="FromUserName")
    create_time: int = Field(alias="CreateTime")
    msg_type: str = Field(alias="MsgType")
    event: str = Field("", alias="Event")
    agent_id: OptionalInt = Field(None, alias="AgentID")
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        """Short stable name for logs, metrics and the inbox's kind column (≤ 64 chars)."""
        return self.KIND

    def __hash__(self) -> int:
        # The default frozen hash would fail on the `raw` dict; equal events share a dedupe key.
        return hash((type(self), self.dedupe_key()))

    def dedupe_key(self) -> str:
        """Same key for WeCom's retries of this payload; customer events all come from `sys`,
        so FromUserName+CreateTime would collide — hash the whole payload instead."""
        return sha256_key(self.raw)

    def order_key(self) -> str | None:
        """Events with the same key are handled one after another, in arrival order (a quit
        must not overtake the join it undoes); None: no order to keep with any other event."""
        return None


def bounded_key(key: str) -> str:
    """An inbox key column holds 80 characters; longer keys are replaced by their hash."""
    return key if len(key) <= MAX_DEDUPE_KEY_LEN else sha256_key(key)


# --- member → app messages (§4.2) -------------------------------------------------------------


class Message(Event):
    """A member wrote to the app; the only kind a passive reply may answer."""

    KIND: ClassVar[str] = "message"
    accepts_reply: ClassVar[bool] = True

    from_user_name: str = Field(alias="FromUserName", min_length=1)
    agent_id: int = Field(alias="AgentID")
    msg_id: str = Field(alias="MsgId", min_length=1)

    def dedupe_key(self) -> str:
        key = f"msg:{self.agent_id}:{self.msg_id}"
        if len(key) <= MAX_DEDUPE_KEY_LEN:
            return key
        return "msg:" + sha256_key(key)


class TextMessage(Message):
    KIND: ClassVar[str] = "text"
    content: str = Field(alias="Content")


class ImageMessage(Message):
    KIND: ClassVar[str] = "image"
    pic_url: str = Field(alias="PicUrl")
    media_id: str = Field(alias="MediaId")


class VoiceMessage(Message):
    KIND: ClassVar[str] = "voice"
    media_id: str = Field(alias="MediaId")
    format: str = Field(alias="Format")


class VideoMessage(Message):
    KIND: ClassVar[str] = "video"
    media_id: str = Field(alias="MediaId")
    thumb_media_id: str = Field(alias="ThumbMediaId")


class LocationMessage(Message):
    KIND: ClassVar[str] = "location"
    location_x: float = Field(alias="Location_X", allow_inf_nan=False)
    location_y: float = Field(alias="Location_Y", allow_inf_nan=False)
    scale: int = Field(alias="Scale")
    label: str = Field("", alias="Label")


class LinkMessage(Message):
    KIND: ClassVar[str] = "link"
    title: str = Field(alias="Title")
    description: str = Field("", alias="Description")
    url: str = Field(alias="Url")
    pic_url: str = Field("", alias="PicUrl")


# --- app events (§4.3) -------------------------------------------------------------------------


class EnterAgent(Event):
    """The member opened the app's chat."""

    KIND: ClassVar[str] = "enter_agent"
    from_user_name: str = Field(alias="FromUserName", min_length=1)
    event_key: str = Field("", alias="EventKey")


# --- customer relationship (§4.4) --------------------------------------------------------------


class ExternalContactEvent(Event):
    """`change_external_contact`: between staff member `user_id` and customer `external_user_id`."""

    KIND: ClassVar[str] = "external_contact"
    change_type: str = Field(alias="ChangeType")
    user_id: str = Field(alias="UserID")
    external_user_id: str = Field(alias="ExternalUserID")

    def order_key(self) -> str | None:
        # One customer's add, edit and deletes change one member record: keep their order.
        return bounded_key(f"contact:{self.external_user_id}")


class ExternalContactAdded(ExternalContactEvent):
    KIND: ClassVar[str] = "external_contact.add"
    state: str = Field("", alias="State")
    welcome_code: OptionalStr = Field(None, alias="WelcomeCode")


class ExternalContactHalfAdded(ExternalContactEvent):
    KIND: ClassVar[str] = "external_contact.add_half"
    state: str = Field("", alias="State")
    welcome_code: OptionalStr = Field(None, alias="WelcomeCode")


class ExternalContactEdited(ExternalContactEvent):
    KIND: ClassVar[str] = "external_contact.edit"


class ExternalContactDeleted(ExternalContactEvent):
    """The member deleted the customer (`source` = DELETE_BY_TRANSFER after an on-job transfer)."""

    KIND: ClassVar[str] = "external_contact.del"
    source: str = Field("", alias="Source")


class FollowUserDeleted(ExternalContactEvent):
    """The customer deleted the member."""

    KIND: ClassVar[str] = "external_contact.del_follow_user"


class TransferFailed(ExternalContactEvent):
    KIND: ClassVar[str] = "external_contact.transfer_fail"
    fail_reason: str = Field("", alias="FailReason")


class MsgAuditApproved(ExternalContactEvent):
    KIND: ClassVar[str] = "external_contact.msg_audit_approved"
    welcome_code: OptionalStr = Field(None, alias="WelcomeCode")


# --- customer groups (§4.5) --------------------------------------------------------------------


class ExternalChatEvent(Event):
    """`change_external_chat` for customer group `chat_id`."""

    KIND: ClassVar[str] = "external_chat"
    chat_id: str = Field(alias="ChatId")
    change_type: str = Field(alias="ChangeType")

    def order_key(self) -> str | None:
        # Joins and quits of one group change its member list: a later one must not overtake.
        return bounded_key(f"chat:{self.chat_id}")


class ExternalChatCreated(ExternalChatEvent):
    KIND: ClassVar[str] = "external_chat.create"


class ExternalChatDismissed(ExternalChatEvent):
    KIND: ClassVar[str] = "external_chat.dismiss"


class ExternalChatUpdated(ExternalChatEvent):
    """Member fields may appear on any update (seen on change_name), so they live here."""

    KIND: ClassVar[str] = "external_chat.update"
    update_detail: str = Field(alias="UpdateDetail")
    join_scene: OptionalInt = Field(None, alias="JoinScene")
    quit_scene: OptionalInt = Field(None, alias="QuitScene")
    mem_change_cnt: OptionalInt = Field(None, alias="MemChangeCnt")
    mem_change_list: ItemList = Field(default_factory=list, alias="MemChangeList")
    last_mem_ver: str = Field("", alias="LastMemVer")
    cur_mem_ver: str = Field("", alias="CurMemVer")


class ChatMemberJoined(ExternalChatUpdated):
    """join_scene 0 = invited by a member, 3 = scanned the group QR code (≠ groupchat/get codes)."""

    KIND: ClassVar[str] = "external_chat.update.add_member"


class ChatMemberLeft(ExternalChatUpdated):
    """quit_scene 0 = left by themselves, 1 = removed by owner/admin."""

    KIND: ClassVar[str] = "external_chat.update.del_member"


class ChatOwnerChanged(ExternalChatUpdated):
    KIND: ClassVar[str] = "external_chat.update.change_owner"


class ChatNameChanged(ExternalChatUpdated):
    KIND: ClassVar[str] = "external_chat.update.change_name"


class ChatNoticeChanged(ExternalChatUpdated):
    KIND: ClassVar[str] = "external_chat.update.change_notice"


# --- tags, 微信客服 (§4.6, §4.7) -----------------------------------------------------------------


class ExternalTagChanged(Event):
    """A corp tag or tag group changed; an empty `tag_id` on shuffle means the groups reordered."""

    KIND: ClassVar[str] = "external_tag"
    tag_id: str = Field("", alias="Id")
    tag_type: Literal["tag", "tag_group"] = Field(alias="TagType")
    change_type: Literal["create", "update", "delete", "shuffle"] = Field(alias="ChangeType")
    strategy_id: str = Field("", alias="StrategyId")

    @property
    def kind(self) -> str:
        return f"{self.KIND}.{self.change_type}"


class KfMsgOrEvent(Event):
    """微信客服 has news for `open_kf_id`; the content must be pulled with kf/sync_msg(token)."""

    KIND: ClassVar[str] = "kf_msg_or_event"
    token: str = Field(alias="Token", min_length=1)
    open_kf_id: str = Field(alias="OpenKfId", min_length=1)


class KfAccountAuthChanged(Event):
    KIND: ClassVar[str] = "kf_account_auth_change"
    auth_add_open_kf_id: str = Field("", alias="AuthAddOpenKfId")
    auth_del_open_kf_id: str = Field("", alias="AuthDelOpenKfId")


class MsgAuditNotify(Event):
    """The chat archive has new data (at most one per ~15 s): the archive reader reads it."""

    KIND: ClassVar[str] = "msgaudit_notify"


class UnknownEvent(Event):
    """Unrecognised or invalid payload, kept whole in `raw`; `reason` says why in one line.

    Common fields are lenient here (defaults for anything missing) so that any dict fits.
    """

    KIND: ClassVar[str] = "unknown"
    to_user_name: str = Field("", alias="ToUserName")
    create_time: int = Field(0, alias="CreateTime")
    msg_type: str = Field("", alias="MsgType")
    reason: str
