"""Typed requests and answers for every WeCom server API sopbot uses (wecom-reference §5).

This module holds the app's own APIs (gettoken, message/send, appchat, media/upload answers),
the group robot webhook, and `API_CALLS`, the registry of every `ApiCall` class by path; the
客户联系 APIs live in `api_contact` and `api_outreach`, 微信客服 in `api_kf`, the base classes
and shared bodies in `api_base`. Import them all from here.

The outbox stores `call.path` and `call.stored()`; `API_CALLS[path].model_validate(stored)`
rebuilds an equal call.
"""

from __future__ import annotations

import hashlib
from base64 import b64encode
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from app.engine.wecom.api_archive import SimGetChatData
from app.engine.wecom.api_base import (
    ApiCall,
    ApiResponse,
    Attachment,
    Body,
    Image,
    Info,
    Link,
    MediaRef,
    MiniProgram,
    Text,
    check_bytes,
    require_body,
)
from app.engine.wecom.api_contact import (
    AddContactWay,
    AddJoinWay,
    Conclusions,
    ContactWay,
    ContactWayDetail,
    ContactWayInfo,
    DelContactWay,
    DelJoinWay,
    ExternalContactDetail,
    ExternalContactInfo,
    FollowUser,
    FollowUserTag,
    GetContactWay,
    GetExternalContact,
    GetGroupChat,
    GetJoinWay,
    GroupChatDetail,
    GroupChatInfo,
    GroupChatMember,
    GroupChatPage,
    GroupChatRef,
    JoinWay,
    JoinWayDetail,
    JoinWayInfo,
    ListGroupChats,
    OwnerFilter,
    SendWelcomeMsg,
    UpdateContactWay,
    UpdateJoinWay,
)
from app.engine.wecom.api_groupstat import GroupChatStatistic
from app.engine.wecom.api_kf import (
    KfAddContactWay,
    KfContactWay,
    KfGetServiceState,
    KfMessage,
    KfMsgSent,
    KfSendMsg,
    KfSendMsgOnEvent,
    KfServiceState,
    KfStateChanged,
    KfSyncMsg,
    KfSyncResult,
    KfTransServiceState,
    MsgMenu,
    MsgMenuItem,
)
from app.engine.wecom.api_outreach import (
    AddCorpTag,
    AddGroupWelcomeTemplate,
    AddMsgTemplate,
    CancelGroupMsgSend,
    CorpTagAdded,
    CorpTagList,
    DelCorpTag,
    DelGroupWelcomeTemplate,
    EditCorpTag,
    EditGroupWelcomeTemplate,
    GetCorpTagList,
    GetGroupMsgListV2,
    GetGroupMsgSendResult,
    GetGroupMsgTask,
    GetGroupWelcomeTemplate,
    GroupMsgList,
    GroupMsgSendResults,
    GroupMsgTasks,
    GroupWelcomeTemplate,
    MarkTag,
    MsgTemplateCreated,
    NewTag,
    RemindGroupMsgSend,
    TagFilter,
    TagFilterGroup,
    WelcomeTemplateAdded,
)

# --- gettoken and media/upload: answers only (the client builds these requests itself) -------


class TokenResponse(ApiResponse):
    access_token: str = ""
    expires_in: int = 7200


class MediaUploaded(ApiResponse):
    type: str = ""
    media_id: str = ""  # valid 3 days, usable by every app of the corp
    created_at: str = ""  # WeCom sends a string of unix seconds


# --- app messages: message/send and appchat/send (§5.2, §5.14) -------------------------------


class Markdown(Body):
    content: str


class TextCard(Body):
    title: str
    description: str
    url: str
    btntxt: Annotated[str, Field(max_length=4)] | None = None

    @model_validator(mode="after")
    def _limits(self) -> TextCard:
        check_bytes("textcard.title", self.title, 128)
        check_bytes("textcard.description", self.description, 512)
        check_bytes("textcard.url", self.url, 2048)
        return self


class Article(Body):
    title: str
    description: str | None = None
    url: str | None = None
    picurl: str | None = None
    appid: str | None = None
    pagepath: str | None = None

    @model_validator(mode="after")
    def _limits(self) -> Article:
        check_bytes("article.title", self.title, 128)
        check_bytes("article.description", self.description, 512)
        check_bytes("article.url", self.url, 2048)
        return self


class News(Body):
    articles: list[Article] = Field(min_length=1, max_length=8)


class Video(Body):
    media_id: str
    title: str | None = None
    description: str | None = None


class AppMessage(Body):
    """The message part shared by message/send and appchat/send."""

    msgtype: Literal["text", "markdown", "textcard", "news", "image", "voice", "video", "file",
                     "mpnews", "miniprogram_notice", "template_card"]
    text: Text | None = None
    markdown: Markdown | None = None
    textcard: TextCard | None = None
    news: News | None = None
    image: MediaRef | None = None
    voice: MediaRef | None = None
    video: Video | None = None
    file: MediaRef | None = None
    # Rarely used by sopbot: passed through as WeCom documents them.
    mpnews: dict[str, Any] | None = None
    miniprogram_notice: dict[str, Any] | None = None
    template_card: dict[str, Any] | None = None
    safe: Literal[0, 1] | None = None

    @model_validator(mode="after")
    def _body(self) -> AppMessage:
        require_body(self, self.msgtype)
        check_bytes("text.content", self.text.content if self.text else None, 2048)
        check_bytes("markdown.content", self.markdown.content if self.markdown else None, 2048)
        return self


class MessageSent(ApiResponse):
    invaliduser: str | None = None  # "a|b", lower-cased userids
    invalidparty: str | None = None
    invalidtag: str | None = None
    unlicenseduser: str | None = None
    msgid: str | None = None  # for recall
    response_code: str | None = None  # interactive template cards: 72 h, single use


DEFAULT_DUPLICATE_CHECK_S = 1800  # WeCom's duplicate_check_interval when none is given


class SendMessage(ApiCall[MessageSent], AppMessage):
    """An app message to members, departments or tags (external users never get these)."""

    path: ClassVar[str] = "message/send"
    response_model: ClassVar[type[ApiResponse]] = MessageSent

    agentid: int
    touser: str | None = None  # "u1|u2" (≤1000) or "@all"
    toparty: str | None = None  # ≤100
    totag: str | None = None  # ≤100
    enable_id_trans: Literal[0, 1] | None = None
    enable_duplicate_check: Literal[0, 1] | None = None
    duplicate_check_interval: int | None = Field(None, ge=1, le=4 * 3600)

    @model_validator(mode="after")
    def _recipients(self) -> SendMessage:
        if not (self.touser or self.toparty or self.totag):
            raise ValueError("touser, toparty and totag cannot all be empty")
        for name, limit in (("touser", 1000), ("toparty", 100), ("totag", 100)):
            count = len((getattr(self, name) or "").split("|"))
            if count > limit:
                raise ValueError(f"{count} ids in {name}; WeCom allows {limit}")
        return self

    def is_dedupable(self) -> bool:
        # With the duplicate check on, WeCom drops a copy sent within the interval.
        return self.enable_duplicate_check == 1

    def dedupe_window(self) -> timedelta | None:
        return timedelta(seconds=self.duplicate_check_interval or DEFAULT_DUPLICATE_CHECK_S)


class AppChatCreated(ApiResponse):
    chatid: str = ""


class CreateAppChat(ApiCall[AppChatCreated]):
    """An internal group chat owned by the app; invisible until its first message."""

    path: ClassVar[str] = "appchat/create"
    response_model: ClassVar[type[ApiResponse]] = AppChatCreated

    name: Annotated[str, Field(max_length=50)] | None = None
    owner: str | None = None
    userlist: list[str] = Field(min_length=2, max_length=2000)
    chatid: Annotated[str, Field(max_length=32, pattern=r"^[0-9A-Za-z]+$")] | None = None


class SendAppChat(ApiCall[ApiResponse], AppMessage):
    """A message to a group chat this app created."""

    path: ClassVar[str] = "appchat/send"

    chatid: str


# --- group robot webhook (§5.13) -------------------------------------------------------------

WEBHOOK_IMAGE_MAX = 2 * 1024 * 1024


class WebhookText(Body):
    content: str
    mentioned_list: list[str] | None = None  # userids or "@all"
    mentioned_mobile_list: list[str] | None = None


class WebhookImage(Body):
    base64: str
    md5: str  # of the raw bytes

    @classmethod
    def of(cls, raw: bytes) -> WebhookImage:
        return cls(base64=b64encode(raw).decode("ascii"),
                   md5=hashlib.md5(raw).hexdigest())

    @model_validator(mode="after")
    def _size(self) -> WebhookImage:
        if len(self.base64) * 3 // 4 > WEBHOOK_IMAGE_MAX:
            raise ValueError("a robot image must be at most 2 MB before base64")
        return self


class WebhookSend(ApiCall[ApiResponse]):
    """A message by a group robot to its internal group (≤20 per minute per robot).

    `robot` is the NAME of a configured robot; the client looks its key up at send time, so
    the key (a secret) never reaches the outbox table.
    """

    path: ClassVar[str] = "webhook/send"
    secret: ClassVar[str | None] = None

    robot: str
    msgtype: Literal["text", "markdown", "image", "news", "file", "voice", "template_card"]
    text: WebhookText | None = None
    markdown: Markdown | None = None
    image: WebhookImage | None = None
    news: News | None = None
    file: MediaRef | None = None
    voice: MediaRef | None = None
    template_card: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _body(self) -> WebhookSend:
        require_body(self, self.msgtype)
        check_bytes("text.content", self.text.content if self.text else None, 2048)
        check_bytes("markdown.content", self.markdown.content if self.markdown else None, 4096)
        return self

    def body(self) -> dict[str, Any] | None:
        body = self.stored()
        del body["robot"]
        return body


# --- the registry ----------------------------------------------------------------------------

_CLASSES: tuple[type[ApiCall[Any]], ...] = (
    SendMessage, CreateAppChat, SendAppChat, WebhookSend,
    SendWelcomeMsg, GetExternalContact,
    AddContactWay, GetContactWay, UpdateContactWay, DelContactWay,
    ListGroupChats, GetGroupChat, AddJoinWay, GetJoinWay, UpdateJoinWay, DelJoinWay,
    MarkTag, GetCorpTagList, AddCorpTag, EditCorpTag, DelCorpTag,
    AddMsgTemplate, GetGroupMsgListV2, GetGroupMsgTask, GetGroupMsgSendResult,
    RemindGroupMsgSend, CancelGroupMsgSend,
    AddGroupWelcomeTemplate, EditGroupWelcomeTemplate, GetGroupWelcomeTemplate,
    DelGroupWelcomeTemplate,
    KfSyncMsg, KfSendMsg, KfSendMsgOnEvent, KfGetServiceState, KfTransServiceState,
    KfAddContactWay,
    SimGetChatData, GroupChatStatistic,
)
API_CALLS: dict[str, type[ApiCall[Any]]] = {cls.path: cls for cls in _CLASSES}

__all__ = [
    "API_CALLS", "GroupChatStatistic",
    "AddContactWay", "AddCorpTag", "AddGroupWelcomeTemplate", "AddJoinWay",
    "AddMsgTemplate", "ApiCall", "ApiResponse", "AppChatCreated", "AppMessage", "Article",
    "Attachment", "CancelGroupMsgSend", "Conclusions", "ContactWay", "ContactWayDetail",
    "ContactWayInfo", "CorpTagAdded", "CorpTagList", "CreateAppChat", "DelContactWay",
    "DelCorpTag", "DelGroupWelcomeTemplate", "DelJoinWay", "EditCorpTag",
    "EditGroupWelcomeTemplate", "ExternalContactDetail", "ExternalContactInfo", "FollowUser",
    "FollowUserTag", "GetContactWay", "GetCorpTagList", "GetExternalContact", "GetGroupChat",
    "GetGroupMsgListV2", "GetGroupMsgSendResult", "GetGroupMsgTask", "GetGroupWelcomeTemplate",
    "GetJoinWay", "GroupChatDetail", "GroupChatInfo", "GroupChatMember", "GroupChatPage",
    "GroupChatRef", "GroupMsgList", "GroupMsgSendResults", "GroupMsgTasks",
    "GroupWelcomeTemplate", "Image", "Info", "JoinWay", "JoinWayDetail", "JoinWayInfo",
    "KfAddContactWay", "KfContactWay", "KfGetServiceState", "KfMessage", "KfMsgSent",
    "KfSendMsg", "KfSendMsgOnEvent", "KfServiceState", "KfStateChanged", "KfSyncMsg",
    "KfSyncResult", "KfTransServiceState", "Link", "ListGroupChats", "MarkTag", "Markdown",
    "MediaRef", "MediaUploaded", "MessageSent", "MiniProgram", "MsgMenu", "MsgMenuItem",
    "MsgTemplateCreated", "News", "NewTag", "OwnerFilter", "RemindGroupMsgSend", "SendAppChat",
    "SendMessage", "SendWelcomeMsg", "TagFilter", "TagFilterGroup", "Text", "TextCard",
    "TokenResponse", "UpdateContactWay", "UpdateJoinWay", "Video", "WebhookImage",
    "WebhookSend", "WebhookText", "WelcomeTemplateAdded",
]
