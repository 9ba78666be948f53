"""客户联系 APIs for reaching customers in bulk: corp tags, mass-send tasks and group welcome
materials (wecom-reference §5.8-5.10). Like every externalcontact/* call they take the 客户联系
secret's token.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from app.engine.wecom.api_base import (
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
    check_text_and_attachments,
)
from app.engine.wecom.api_contact import ContactCall

# --- tags (§5.8) -----------------------------------------------------------------------------


class MarkTag(ContactCall[ApiResponse]):
    """Add and remove corp tags on one customer of one member (no callback follows)."""

    path: ClassVar[str] = "externalcontact/mark_tag"
    # Tags are a set: marking twice leaves the same tags, so a resend is harmless.
    dedupes: ClassVar[bool] = True

    userid: str
    external_userid: str
    add_tag: list[str] | None = None
    remove_tag: list[str] | None = None

    @model_validator(mode="after")
    def _something(self) -> MarkTag:
        if not self.add_tag and not self.remove_tag:
            raise ValueError("add_tag and remove_tag cannot both be empty")
        return self


class Tag(Info):
    id: str
    name: str = ""
    create_time: int | None = None
    order: int | None = None
    deleted: bool | None = None


class TagGroup(Info):
    group_id: str
    group_name: str = ""
    create_time: int | None = None
    order: int | None = None
    deleted: bool | None = None
    tag: list[Tag] = []


class CorpTagList(ApiResponse):
    tag_group: list[TagGroup] = []


class GetCorpTagList(ContactCall[CorpTagList]):
    """Both filters empty: every tag; when both are given WeCom uses only group_id."""

    path: ClassVar[str] = "externalcontact/get_corp_tag_list"
    dedupes: ClassVar[bool] = True
    response_model: ClassVar[type[ApiResponse]] = CorpTagList

    tag_id: list[str] | None = None
    group_id: list[str] | None = None


class NewTag(Body):
    name: str
    order: int | None = None


class CorpTagAdded(ApiResponse):
    tag_group: TagGroup | None = None


class AddCorpTag(ContactCall[CorpTagAdded]):
    """Tags into the group `group_id`, or into a new group named `group_name`."""

    path: ClassVar[str] = "externalcontact/add_corp_tag"
    response_model: ClassVar[type[ApiResponse]] = CorpTagAdded

    group_id: str | None = None
    group_name: str | None = None
    order: int | None = None
    tag: list[NewTag] = Field(min_length=1)
    agentid: int | None = None

    @model_validator(mode="after")
    def _group(self) -> AddCorpTag:
        if not self.group_id and not self.group_name:
            raise ValueError("give group_id (an existing group) or group_name (a new one)")
        return self


class EditCorpTag(ContactCall[ApiResponse]):
    path: ClassVar[str] = "externalcontact/edit_corp_tag"

    id: str  # a tag id or a tag group id
    name: str | None = None
    order: int | None = None
    agentid: int | None = None


class DelCorpTag(ContactCall[ApiResponse]):
    path: ClassVar[str] = "externalcontact/del_corp_tag"

    tag_id: list[str] | None = None
    group_id: list[str] | None = None
    agentid: int | None = None

    @model_validator(mode="after")
    def _something(self) -> DelCorpTag:
        if not self.tag_id and not self.group_id:
            raise ValueError("tag_id and group_id cannot both be empty")
        return self


# --- mass send: add_msg_template and its tasks (§5.9) ----------------------------------------


class TagFilterGroup(Body):
    tag_list: list[str] = Field(min_length=1, max_length=100)  # OR within a group


class TagFilter(Body):
    group_list: list[TagFilterGroup]  # AND across groups


class MsgTemplateCreated(ApiResponse):
    fail_list: list[str] = []
    msgid: str = ""


class AddMsgTemplate(ContactCall[MsgTemplateCreated]):
    """A mass-send task: nothing is sent until the member (or group owner) confirms it."""

    path: ClassVar[str] = "externalcontact/add_msg_template"
    response_model: ClassVar[type[ApiResponse]] = MsgTemplateCreated

    chat_type: Literal["single", "group"] | None = None  # WeCom's default: single
    external_userid: list[str] | None = Field(None, max_length=10000)
    chat_id_list: list[str] | None = Field(None, max_length=2000)
    tag_filter: TagFilter | None = None
    sender: str | None = None
    allow_select: bool | None = None
    text: Text | None = None
    attachments: list[Attachment] | None = None

    @model_validator(mode="after")
    def _rules(self) -> AddMsgTemplate:
        check_text_and_attachments(self.text, self.attachments, 4000)
        if self.chat_type == "group" and (not self.sender or self.external_userid):
            raise ValueError("a group task needs sender and takes no external_userid")
        if self.chat_type != "group" and self.chat_id_list:
            raise ValueError("chat_id_list needs chat_type 'group'")
        return self


class GroupMsg(Info):
    msgid: str
    creator: str | None = None
    create_time: int | None = None
    create_type: int | None = None  # 0 by the company, 1 by a member
    text: dict[str, Any] | None = None
    attachments: list[dict[str, Any]] = []


class GroupMsgList(ApiResponse):
    group_msg_list: list[GroupMsg] = []
    next_cursor: str = ""


class GetGroupMsgListV2(ContactCall[GroupMsgList]):
    path: ClassVar[str] = "externalcontact/get_groupmsg_list_v2"
    dedupes: ClassVar[bool] = True
    response_model: ClassVar[type[ApiResponse]] = GroupMsgList

    chat_type: Literal["single", "group"]
    start_time: int
    end_time: int
    creator: str | None = None
    filter_type: Literal[0, 1, 2] | None = None
    limit: int | None = Field(None, ge=1, le=100)
    cursor: str | None = None


class GroupMsgTask(Info):
    userid: str
    status: int = 0  # 0 not sent, 2 sent
    send_time: int | None = None


class GroupMsgTasks(ApiResponse):
    task_list: list[GroupMsgTask] = []
    next_cursor: str = ""


class GetGroupMsgTask(ContactCall[GroupMsgTasks]):
    path: ClassVar[str] = "externalcontact/get_groupmsg_task"
    dedupes: ClassVar[bool] = True
    response_model: ClassVar[type[ApiResponse]] = GroupMsgTasks

    msgid: str
    limit: int | None = Field(None, ge=1, le=1000)
    cursor: str | None = None


class GroupMsgSendItem(Info):
    userid: str = ""
    external_userid: str | None = None
    chat_id: str | None = None
    # 0 not sent, 1 sent, 2 not a friend any more, 3 already got a mass message today
    status: int = 0
    send_time: int | None = None


class GroupMsgSendResults(ApiResponse):
    send_list: list[GroupMsgSendItem] = []
    next_cursor: str = ""


class GetGroupMsgSendResult(ContactCall[GroupMsgSendResults]):
    path: ClassVar[str] = "externalcontact/get_groupmsg_send_result"
    dedupes: ClassVar[bool] = True
    response_model: ClassVar[type[ApiResponse]] = GroupMsgSendResults

    msgid: str
    userid: str
    limit: int | None = Field(None, ge=1, le=1000)
    cursor: str | None = None


class RemindGroupMsgSend(ContactCall[ApiResponse]):
    """At most 3 reminders per task per 24 h, so a resend is not free."""

    path: ClassVar[str] = "externalcontact/remind_groupmsg_send"

    msgid: str


class CancelGroupMsgSend(ContactCall[ApiResponse]):
    path: ClassVar[str] = "externalcontact/cancel_groupmsg_send"

    msgid: str


# --- group welcome materials (§5.10) ---------------------------------------------------------


class WelcomeMaterial(Body):
    """Text (≤3000 bytes, may hold %NICKNAME%) plus at most one attachment."""

    text: Text | None = None
    image: Image | None = None
    link: Link | None = None
    miniprogram: MiniProgram | None = None
    file: MediaRef | None = None
    video: MediaRef | None = None

    @model_validator(mode="after")
    def _material(self) -> WelcomeMaterial:
        check_bytes("text.content", self.text.content if self.text else None, 3000)
        parts = [self.image, self.link, self.miniprogram, self.file, self.video]
        attached = sum(part is not None for part in parts)
        if attached > 1:
            raise ValueError("a group welcome template holds at most one attachment")
        if self.text is None and not attached:
            raise ValueError("a group welcome template needs text or an attachment")
        return self


class WelcomeTemplateAdded(ApiResponse):
    template_id: str = ""


class AddGroupWelcomeTemplate(ContactCall[WelcomeTemplateAdded], WelcomeMaterial):
    path: ClassVar[str] = "externalcontact/group_welcome_template/add"
    response_model: ClassVar[type[ApiResponse]] = WelcomeTemplateAdded

    agentid: int | None = None
    notify: Literal[0, 1] | None = None  # 1 (default): tell members to apply it


class EditGroupWelcomeTemplate(ContactCall[ApiResponse], WelcomeMaterial):
    path: ClassVar[str] = "externalcontact/group_welcome_template/edit"

    template_id: str
    agentid: int | None = None


class GroupWelcomeTemplate(ApiResponse):
    text: dict[str, Any] | None = None
    image: dict[str, Any] | None = None
    link: dict[str, Any] | None = None
    miniprogram: dict[str, Any] | None = None
    file: dict[str, Any] | None = None
    video: dict[str, Any] | None = None


class GetGroupWelcomeTemplate(ContactCall[GroupWelcomeTemplate]):
    path: ClassVar[str] = "externalcontact/group_welcome_template/get"
    dedupes: ClassVar[bool] = True
    response_model: ClassVar[type[ApiResponse]] = GroupWelcomeTemplate

    template_id: str


class DelGroupWelcomeTemplate(ContactCall[ApiResponse]):
    path: ClassVar[str] = "externalcontact/group_welcome_template/del"

    template_id: str
    agentid: int | None = None
