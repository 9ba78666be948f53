"""客户联系 (customer contact) APIs, `externalcontact/*` (wecom-reference §5.3-5.7): welcome,
customers, 联系我 codes, customer groups and 加入群聊 codes (tags and mass send: api_outreach).

All of them take the 客户联系 secret's token (or an app listed under 可调用应用); any other token
gets 48002. Answers are modelled field by field as documented and stay permissive.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, ClassVar, Generic, Literal

from pydantic import Field, model_validator

from app.engine.wecom.api_base import (
    ApiCall,
    ApiResponse,
    Attachment,
    Body,
    Image,
    Info,
    Link,
    MiniProgram,
    R,
    ShortText,
    Text,
    check_text_and_attachments,
)


class ContactCall(ApiCall[R], Generic[R]):
    """An externalcontact/* call: the 客户联系 secret's token."""

    secret: ClassVar[str | None] = "contact"


# --- send_welcome_msg (§5.3) -----------------------------------------------------------------


class SendWelcomeMsg(ContactCall[ApiResponse]):
    """The one welcome message after a friend add; the code is valid 20 s and single use."""

    path: ClassVar[str] = "externalcontact/send_welcome_msg"
    # Single-use code: a resent copy gets 41051 instead of a second message, for as long as
    # the code lives (20 s from the event); after that every copy gets 41050.
    dedupes: ClassVar[bool] = True
    done_already: ClassVar[frozenset[int]] = frozenset({41051})
    code_life: ClassVar[timedelta | None] = timedelta(seconds=20)
    code_gone: ClassVar[frozenset[int]] = frozenset({41050})

    welcome_code: str
    text: Text | None = None
    attachments: list[Attachment] | None = None

    @model_validator(mode="after")
    def _limits(self) -> SendWelcomeMsg:
        check_text_and_attachments(self.text, self.attachments, 4000)
        return self


# --- externalcontact/get (§5.4) --------------------------------------------------------------


class FollowUserTag(Info):
    group_name: str | None = None
    tag_name: str | None = None
    type: int | None = None  # 1 corp, 2 personal, 3 rule group
    tag_id: str | None = None  # absent for personal tags


class FollowUser(Info):
    userid: str
    remark: str | None = None
    description: str | None = None
    createtime: int | None = None
    tags: list[FollowUserTag] = []
    remark_corp_name: str | None = None
    remark_mobiles: list[str] = []
    add_way: int | None = None
    oper_userid: str | None = None
    state: str | None = None  # the 联系我 state used: the channel routing key


class ExternalContactInfo(Info):
    external_userid: str
    name: str = ""
    avatar: str | None = None
    type: int | None = None  # 1 WeChat user, 2 WeCom user
    gender: int | None = None
    unionid: str | None = None
    position: str | None = None
    corp_name: str | None = None
    corp_full_name: str | None = None


class ExternalContactDetail(ApiResponse):
    external_contact: ExternalContactInfo | None = None
    follow_user: list[FollowUser] = []
    next_cursor: str | None = None  # present when more than 500 follow users


class GetExternalContact(ContactCall[ExternalContactDetail]):
    path: ClassVar[str] = "externalcontact/get"
    method: ClassVar[str] = "GET"
    dedupes: ClassVar[bool] = True
    response_model: ClassVar[type[ApiResponse]] = ExternalContactDetail

    external_userid: str
    cursor: str | None = None


# --- 联系我: add/get/update/del_contact_way (§5.5) ---------------------------------------------


class Conclusions(Body):
    """The closing message of a temporary session."""

    text: Text | None = None
    image: Image | None = None
    link: Link | None = None
    miniprogram: MiniProgram | None = None


class ContactWayFields(Body):
    style: int | None = None
    remark: ShortText | None = None
    skip_verify: bool | None = None  # WeCom's default is true: no verification
    state: ShortText | None = None
    user: list[str] | None = None
    party: list[int] | None = None
    expires_in: int | None = Field(None, gt=0, le=14 * 86400)
    chat_expires_in: int | None = Field(None, gt=0, le=14 * 86400)
    unionid: str | None = None
    conclusions: Conclusions | None = None


class ContactWay(ApiResponse):
    config_id: str = ""
    qr_code: str | None = None  # scene 2 only


class AddContactWay(ContactCall[ContactWay], ContactWayFields):
    """A 联系我 code; persist config_id: API-made configs are invisible in the admin console."""

    path: ClassVar[str] = "externalcontact/add_contact_way"
    response_model: ClassVar[type[ApiResponse]] = ContactWay

    type: Literal[1, 2]  # 1 single member, 2 several
    scene: Literal[1, 2]  # 1 mini-program button, 2 QR code
    is_temp: bool | None = None
    is_exclusive: bool | None = None

    @model_validator(mode="after")
    def _members(self) -> AddContactWay:
        users, parties = self.user or [], self.party or []
        if self.type == 1 and (len(users) != 1 or parties):
            raise ValueError("type 1 (single member) needs exactly one user and no party")
        if self.type == 2 and not (users or parties):
            raise ValueError("type 2 needs users or parties")
        if len(users) > 100:
            raise ValueError(f"{len(users)} users; a 联系我 config allows 100")
        if self.is_temp and self.type != 1:
            raise ValueError("is_temp is only for a single member (type 1)")
        return self


class ContactWayInfo(Info):
    config_id: str
    type: int | None = None
    scene: int | None = None
    style: int | None = None
    remark: str | None = None
    skip_verify: bool | None = None
    state: str | None = None
    qr_code: str | None = None
    user: list[str] = []
    party: list[int] = []
    is_temp: bool | None = None
    expires_in: int | None = None
    chat_expires_in: int | None = None
    unionid: str | None = None
    conclusions: dict[str, Any] | None = None


class ContactWayDetail(ApiResponse):
    contact_way: ContactWayInfo | None = None


class GetContactWay(ContactCall[ContactWayDetail]):
    path: ClassVar[str] = "externalcontact/get_contact_way"
    dedupes: ClassVar[bool] = True
    response_model: ClassVar[type[ApiResponse]] = ContactWayDetail

    config_id: str


class UpdateContactWay(ContactCall[ApiResponse], ContactWayFields):
    path: ClassVar[str] = "externalcontact/update_contact_way"

    config_id: str


class DelContactWay(ContactCall[ApiResponse]):
    path: ClassVar[str] = "externalcontact/del_contact_way"

    config_id: str


# --- customer groups: groupchat/list, groupchat/get (§5.6) -----------------------------------


class OwnerFilter(Body):
    userid_list: list[str] = Field(max_length=100)


class GroupChatRef(Info):
    chat_id: str
    status: int = 0  # 0 normal, 1 owner resigned, 2 inheriting, 3 inherited


class GroupChatPage(ApiResponse):
    group_chat_list: list[GroupChatRef] = []
    next_cursor: str = ""  # empty: the last page


class ListGroupChats(ContactCall[GroupChatPage]):
    """One page of customer groups; filter by owner when more than 1000 people are in scope."""

    path: ClassVar[str] = "externalcontact/groupchat/list"
    dedupes: ClassVar[bool] = True
    response_model: ClassVar[type[ApiResponse]] = GroupChatPage

    status_filter: Literal[0, 1, 2, 3] | None = None
    owner_filter: OwnerFilter | None = None
    cursor: str | None = None
    limit: int = Field(1000, ge=1, le=1000)


class Invitor(Info):
    userid: str


class GroupChatMember(Info):
    userid: str
    type: int  # 1 member, 2 external contact
    join_time: int | None = None
    join_scene: int | None = None  # 1 direct invite, 2 invite link, 3 QR code
    invitor: Invitor | None = None
    group_nickname: str | None = None
    name: str | None = None  # with need_name=1
    unionid: str | None = None
    state: str | None = None  # the join-way state used


class GroupChatAdmin(Info):
    userid: str


class GroupChatInfo(Info):
    chat_id: str
    name: str = ""
    owner: str = ""
    create_time: int | None = None
    notice: str | None = None
    member_list: list[GroupChatMember] = []
    admin_list: list[GroupChatAdmin] = []
    member_version: str | None = None


class GroupChatDetail(ApiResponse):
    group_chat: GroupChatInfo | None = None


class GetGroupChat(ContactCall[GroupChatDetail]):
    path: ClassVar[str] = "externalcontact/groupchat/get"
    dedupes: ClassVar[bool] = True
    response_model: ClassVar[type[ApiResponse]] = GroupChatDetail

    chat_id: str
    need_name: Literal[0, 1] | None = None


# --- 加入群聊: add/get/update/del_join_way (§5.7) ----------------------------------------------


class JoinWayFields(Body):
    scene: Literal[1, 2]  # 1 mini-program plugin, 2 group QR code
    remark: str | None = None  # WeCom truncates it to 30 characters
    auto_create_room: Literal[0, 1] | None = None
    room_base_name: Annotated[str, Field(max_length=40)] | None = None
    room_base_id: int | None = None
    chat_id_list: list[str] = Field(min_length=1, max_length=5)
    state: ShortText | None = None
    mark_source: bool | None = None


class JoinWay(ApiResponse):
    config_id: str = ""


class AddJoinWay(ContactCall[JoinWay], JoinWayFields):
    path: ClassVar[str] = "externalcontact/groupchat/add_join_way"
    response_model: ClassVar[type[ApiResponse]] = JoinWay


class JoinWayInfo(Info):
    config_id: str
    scene: int | None = None
    remark: str | None = None
    auto_create_room: int | None = None
    room_base_name: str | None = None
    room_base_id: int | None = None
    chat_id_list: list[str] = []
    qr_code: str | None = None
    state: str | None = None


class JoinWayDetail(ApiResponse):
    join_way: JoinWayInfo | None = None


class GetJoinWay(ContactCall[JoinWayDetail]):
    path: ClassVar[str] = "externalcontact/groupchat/get_join_way"
    dedupes: ClassVar[bool] = True
    response_model: ClassVar[type[ApiResponse]] = JoinWayDetail

    config_id: str


class UpdateJoinWay(ContactCall[ApiResponse], JoinWayFields):
    """Replaces the whole join way, so sending it again after a lost answer is harmless."""

    path: ClassVar[str] = "externalcontact/groupchat/update_join_way"
    dedupes: ClassVar[bool] = True

    config_id: str


class DelJoinWay(ContactCall[ApiResponse]):
    path: ClassVar[str] = "externalcontact/groupchat/del_join_way"

    config_id: str
