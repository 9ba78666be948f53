"""微信客服 (kf) APIs, `kf/*` (wecom-reference §5.11): the only official channel for a real
conversation with WeChat users. All of them take the 微信客服 secret's token.

Sending is allowed only while the session is in state 0 or 1, within 48 h of the customer's
last message and at most 5 messages per customer message; success means accepted, not
delivered (watch `msg_send_fail` events in kf/sync_msg).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, ClassVar, Generic, Literal

from pydantic import Field, model_validator

from app.engine.wecom.api_base import (
    ApiCall,
    ApiResponse,
    Body,
    Info,
    MediaRef,
    R,
    Text,
    check_bytes,
    require_body,
)

# Our own id for a kf message: WeCom drops a second message with the same msgid.
KfMsgId = Annotated[str, Field(max_length=32, pattern=r"^[0-9A-Za-z_-]+$")]


class KfCall(ApiCall[R], Generic[R]):
    """A kf/* call: the 微信客服 secret's token."""

    secret: ClassVar[str | None] = "kf"


# --- kf/sync_msg -----------------------------------------------------------------------------


class KfTextInfo(Info):
    content: str = ""
    menu_id: str | None = None  # set when the customer clicked a menu item


class KfEventInfo(Info):
    """The `event` object of a msgtype=event message; which fields come depends on the type."""

    event_type: str
    open_kfid: str | None = None
    external_userid: str | None = None
    scene: str | None = None
    scene_param: str | None = None
    welcome_code: str | None = None  # enter_session: for kf/send_msg_on_event, 20 s
    fail_msgid: str | None = None
    fail_type: int | None = None
    servicer_userid: str | None = None
    status: int | None = None
    change_type: int | None = None
    old_servicer_userid: str | None = None
    new_servicer_userid: str | None = None
    msg_code: str | None = None
    recall_msgid: str | None = None


class KfMessage(Info):
    msgid: str  # the dedupe key
    msgtype: str
    open_kfid: str | None = None  # for msgtype=event: inside `event`
    external_userid: str | None = None
    send_time: int | None = None
    origin: int | None = None  # 3 customer, 4 system event, 5 servicer from the client
    servicer_userid: str | None = None
    text: KfTextInfo | None = None
    event: KfEventInfo | None = None


class KfSyncResult(ApiResponse):
    next_cursor: str = ""  # persist after every page
    has_more: int = 0  # loop on this, not on an empty msg_list
    msg_list: list[KfMessage] = []


class KfSyncMsg(KfCall[KfSyncResult]):
    """One page of kf messages after `cursor`; pass the callback's `token` (valid 10 min)."""

    path: ClassVar[str] = "kf/sync_msg"
    # Reading moves no server-side state: the cursor is ours.
    dedupes: ClassVar[bool] = True
    response_model: ClassVar[type[ApiResponse]] = KfSyncResult

    cursor: Annotated[str, Field(max_length=64)] | None = None
    token: str | None = None
    limit: int | None = Field(None, ge=1, le=1000)
    voice_format: Literal[0, 1] | None = None  # 0 amr, 1 silk
    open_kfid: str | None = None


# --- message bodies for kf/send_msg ----------------------------------------------------------


class MenuClick(Body):
    id: str | None = None
    content: str


class MenuView(Body):
    url: str
    content: str


class MenuMiniProgram(Body):
    appid: str
    pagepath: str
    content: str


class MenuText(Body):
    content: str
    no_newline: Literal[0, 1] | None = None


class MsgMenuItem(Body):
    type: Literal["click", "view", "miniprogram", "text"]
    click: MenuClick | None = None
    view: MenuView | None = None
    miniprogram: MenuMiniProgram | None = None
    text: MenuText | None = None

    @model_validator(mode="after")
    def _matching_object(self) -> MsgMenuItem:
        require_body(self, self.type)
        return self


class MsgMenu(Body):
    head_content: str | None = None
    # WeCom's name is `list`; the attribute is `items` so the builtin stays usable here.
    items: list[MsgMenuItem] | None = Field(None, alias="list")
    tail_content: str | None = None


class KfLink(Body):
    title: str
    url: str
    thumb_media_id: str
    desc: str | None = None

    @model_validator(mode="after")
    def _limits(self) -> KfLink:
        check_bytes("link.title", self.title, 128)
        check_bytes("link.desc", self.desc, 512)
        check_bytes("link.url", self.url, 2048)
        return self


class KfMiniProgram(Body):
    appid: str
    thumb_media_id: str
    pagepath: str
    title: str | None = None


class KfLocation(Body):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None


class KfBusinessCard(Body):
    userid: str


class KfCaLink(Body):
    link_url: str


class KfMsgSent(ApiResponse):
    msgid: str = ""


# --- kf/send_msg, kf/send_msg_on_event -------------------------------------------------------


class KfSendMsg(KfCall[KfMsgSent]):
    """A message to a customer in a kf session (state 0/1, 48 h, ≤5 per customer message)."""

    path: ClassVar[str] = "kf/send_msg"
    response_model: ClassVar[type[ApiResponse]] = KfMsgSent

    touser: str  # the customer's external_userid
    open_kfid: str
    msgid: KfMsgId | None = None
    msgtype: Literal["text", "image", "voice", "video", "file", "link", "miniprogram",
                     "msgmenu", "location", "business_card", "ca_link"]
    text: Text | None = None
    image: MediaRef | None = None
    voice: MediaRef | None = None
    video: MediaRef | None = None
    file: MediaRef | None = None
    link: KfLink | None = None
    miniprogram: KfMiniProgram | None = None
    msgmenu: MsgMenu | None = None
    location: KfLocation | None = None
    business_card: KfBusinessCard | None = None
    ca_link: KfCaLink | None = None

    @model_validator(mode="after")
    def _matching_object(self) -> KfSendMsg:
        require_body(self, self.msgtype)
        return self

    # A second copy with our msgid is refused as a used msgid (40058): after an attempt whose
    # answer was lost, that says the first one arrived.
    done_already: ClassVar[frozenset[int]] = frozenset({40058})

    def is_dedupable(self) -> bool:
        # With our msgid WeCom refuses a second copy; without one it would send it again.
        return self.msgid is not None


class KfSendMsgOnEvent(KfCall[KfMsgSent]):
    """The one message allowed by an event code (enter-session welcome: 20 s)."""

    path: ClassVar[str] = "kf/send_msg_on_event"
    response_model: ClassVar[type[ApiResponse]] = KfMsgSent

    code: str  # welcome_code or msg_code from the event
    msgid: KfMsgId | None = None
    msgtype: Literal["text", "msgmenu"]
    text: Text | None = None
    msgmenu: MsgMenu | None = None

    @model_validator(mode="after")
    def _matching_object(self) -> KfSendMsgOnEvent:
        require_body(self, self.msgtype)
        return self

    # The code is single use: refused (40058) after an attempt whose answer was lost, it was
    # used by that attempt. An enter_session code lives 20 s (a msg_code longer: the shorter
    # life is assumed for both).
    done_already: ClassVar[frozenset[int]] = frozenset({40058})
    code_life: ClassVar[timedelta | None] = timedelta(seconds=20)

    def is_dedupable(self) -> bool:
        return self.msgid is not None


# --- session state ---------------------------------------------------------------------------

# 0 new, 1 handled by the bot, 2 waiting in the pool, 3 handled by a person, 4 ended
ServiceState = Literal[0, 1, 2, 3, 4]


class KfServiceState(ApiResponse):
    service_state: int = 0
    servicer_userid: str | None = None


class KfGetServiceState(KfCall[KfServiceState]):
    path: ClassVar[str] = "kf/service_state/get"
    dedupes: ClassVar[bool] = True
    response_model: ClassVar[type[ApiResponse]] = KfServiceState

    open_kfid: str
    external_userid: str


class KfStateChanged(ApiResponse):
    msg_code: str | None = None  # for a prompt (2/3, first time) or closing message (4)


class KfTransServiceState(KfCall[KfStateChanged]):
    path: ClassVar[str] = "kf/service_state/trans"
    response_model: ClassVar[type[ApiResponse]] = KfStateChanged

    open_kfid: str
    external_userid: str
    service_state: ServiceState
    servicer_userid: str | None = None

    @model_validator(mode="after")
    def _servicer(self) -> KfTransServiceState:
        if self.service_state == 3 and not self.servicer_userid:
            raise ValueError("service_state 3 (a person) needs servicer_userid")
        return self


# --- kf/add_contact_way ----------------------------------------------------------------------


class KfContactWay(ApiResponse):
    url: str = ""  # append &scene_param=<urlencoded, ≤128 B> for routing


class KfAddContactWay(KfCall[KfContactWay]):
    path: ClassVar[str] = "kf/add_contact_way"
    response_model: ClassVar[type[ApiResponse]] = KfContactWay

    open_kfid: str
    scene: Annotated[str, Field(max_length=32, pattern=r"^[0-9A-Za-z_-]+$")] | None = None
