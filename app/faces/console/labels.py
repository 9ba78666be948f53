"""How stored values read on console pages: Chinese labels (from sop_flows/ where it has them),
the segment filters' choices, and masked phones. Times are app/faces/console/times.py's."""

from __future__ import annotations

from app.engine.logs import mask_phones
from app.faces.console.times import NONE
from app.flows import Flows
from app.members import models as member
from app.verify.models import APPROVED, AUTO_REVIEWER, PENDING, REJECTED

MEMBER_STATUS = {
    member.ADDED: "已加好友", member.SUBMITTED: "待审核", member.APPROVED: "审核通过",
    member.REJECTED: "未通过", member.ROUTED: "已分群", member.JOINED: "已入群",
    member.LEFT: "已离开",
}
REVIEW_STATUS = {PENDING: "待审核", APPROVED: "通过", REJECTED: "拒绝"}
NO_SEGMENT = "none"  # a segment filter's value for what has no segment (routing.yaml has none)


def phone_masked(phone: str | None) -> str:
    """138****1234: what lists show (the whole number only where a person must check it)."""
    return mask_phones(phone) if phone else NONE


def identity(flows: Flows, value: str | None) -> str:
    return flows.verify.identity_types.get(value or "", value or NONE)


def channel(flows: Flows, value: str | None) -> str:
    return flows.funnel.channel_labels().get(value or "", value or NONE)


def segment(flows: Flows, value: str | None) -> str:
    found = flows.routing.segments.get(value or "")
    return found.label if found else (value or NONE)


def segment_choices(flows: Flows, none_label: str) -> list[tuple[str, str]]:
    """A segment filter's choices: all, each segment (label and name), then NO_SEGMENT."""
    return [("", "全部分群"),
            *((name, f"{label}（{name}）")
              for name, label in flows.routing.segment_labels().items()),
            (NO_SEGMENT, none_label)]


def member_status(value: str) -> str:
    return MEMBER_STATUS.get(value, value)


def reviewer(value: str | None, me: str | None = None) -> str:
    """Who decided: a console operator by userid, the `/review` command as wecom:userid,
    sop_flows' rules as "auto"."""
    if not value:
        return NONE
    if value == AUTO_REVIEWER:
        return "自动规则"
    if value == me:
        return f"您（{value}）"
    if value.startswith("wecom:"):
        return f"{value.removeprefix('wecom:')}（企业微信命令）"
    return value
