"""Customer-group statistics, `externalcontact/groupchat/statistic` (wecom-reference §5.16):
WeCom's figures for all of an owner's customer groups together, per owner, never per group.
The 客户联系 secret's token, like every externalcontact/* call.

Days are Asia/Shanghai days given as unix seconds of their 00:00 (`day_end_time` is the last
day's 00:00, at most 30 days after `day_begin_time`); yesterday is the latest day with figures
and the last 180 days are kept. `owner_filter.userid_list` holds at most 100 owners.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from app.engine.wecom.api_base import ApiResponse, Info
from app.engine.wecom.api_contact import ContactCall, OwnerFilter

STAT_SPAN_DAYS = 30
OWNERS_MAX = 100  # owner_filter.userid_list


class GroupStatData(Info):
    new_chat_cnt: int = 0  # groups made in the days
    chat_total: int = 0
    chat_has_msg: int = 0  # groups with a message
    new_member_cnt: int = 0
    member_total: int = 0
    member_has_msg: int = 0  # members who sent a message
    msg_total: int = 0
    migrate_trainee_chat_cnt: int = 0


class GroupStatItem(Info):
    owner: str
    data: GroupStatData = GroupStatData()


class GroupStats(ApiResponse):
    total: int = 0
    next_offset: int = 0
    items: list[GroupStatItem] = []


class GroupChatStatistic(ContactCall[GroupStats]):
    """The owners' figures over the days asked, one item per owner, paged by offset."""

    path: ClassVar[str] = "externalcontact/groupchat/statistic"
    dedupes: ClassVar[bool] = True  # it only reads
    response_model: ClassVar[type[ApiResponse]] = GroupStats

    day_begin_time: int = Field(ge=0)
    day_end_time: int | None = Field(None, ge=0)
    owner_filter: OwnerFilter
    # 1 new_chat_cnt, 2 chat_total, 3 chat_has_msg, 4 new_member_cnt, 5 member_total,
    # 6 member_has_msg, 7 msg_total, 8 migrate_trainee_chat_cnt
    order_by: int | None = Field(None, ge=1, le=8)
    order_asc: Literal[0, 1] | None = None
    offset: int | None = Field(None, ge=0)
    limit: int | None = Field(None, ge=1, le=1000)
