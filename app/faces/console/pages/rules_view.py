"""What the group rules page shows: the strike ledger (newest first, by kind, status and group),
each strike with its member, group, rule, what it led to and the message as evidence (phone
numbers masked; the evidence view shows it whole), and the praise candidates. Reads only, apart
from the decisions' notices' wording."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.archive import rules_review as review
from app.archive.rules import (
    ACTIVE,
    CONTRIBUTION,
    DISMISSED,
    OPERATOR_ALERT,
    OWNER_TASK,
    PRAISE,
    VIOLATION,
    VOIDED,
)
from app.engine.logs import mask_phones
from app.faces.console import labels
from app.faces.console.pages.outbox_view import STATUS_LABELS as OUTBOX_STATUS
from app.faces.console.times import local
from app.flows import Flows

PAGE_SIZE = 50
KIND_LABELS = {VIOLATION: "违规", CONTRIBUTION: "贡献"}
STATUS_LABELS = {ACTIVE: "有效", DISMISSED: "已驳回", VOIDED: "已作废（消息撤回）"}
ACTION_LABELS = {OWNER_TASK: "群主待办", OPERATOR_ALERT: "运营提醒", PRAISE: "表扬候选"}
SENT_LABELS = {OWNER_TASK: "已通知群主", OPERATOR_ALERT: "已提醒运营"}
DECISION_LABELS = {review.DISMISS: "驳回", review.CONFIRM: "确认"}
MSGTYPE_LABELS = {"image": "图片", "voice": "语音", "video": "视频", "emotion": "表情",
                  "file": "文件", "link": "链接卡片", "weapp": "小程序", "card": "名片",
                  "location": "位置", "mixed": "图文"}


@dataclass(frozen=True)
class Form:
    kind: str = ""
    status: str = ""
    group: str = ""
    page: int = 1

    def query(self, page: int | None = None) -> dict[str, Any]:
        values = {"kind": self.kind, "status": self.status, "group": self.group,
                  "page": page if page is not None else self.page}
        return {k: v for k, v in values.items() if v and not (k == "page" and v == 1)}

    def problem(self) -> str | None:
        if self.kind and self.kind not in KIND_LABELS:
            return "未知的类型。"
        if self.status and self.status not in STATUS_LABELS:
            return "未知的状态。"
        return None


@dataclass(frozen=True)
class StrikeRow:
    id: int
    kind: str
    kind_label: str
    status: str
    status_label: str
    rule: str
    rule_label: str
    points: int
    member: str  # the directory's name, else masked phone, else the external userid
    userid: str
    member_id: int | None
    group: str
    chat_id: str
    at: str
    evidence: str  # phones masked
    has_text: bool  # whether there is text to show whole
    actions: list[str]
    reviewed: str | None
    decidable: tuple[str, ...]  # the decisions the strike's status allows


@dataclass(frozen=True)
class CandidateRow:
    member: str
    userid: str
    member_id: int | None
    group: str
    chat_id: str
    points: int
    answers: int
    intros: int
    last: str


def member_label(name: str | None, phone: str | None, userid: str) -> str:
    if name:
        return name
    if phone:
        return labels.phone_masked(phone)
    return userid


def evidence(entry: review.Entry, masked: bool = True) -> str:
    """The message as the ledger's evidence: its text while kept, else why there is none."""
    if entry.recalled:
        return "（消息已撤回）"
    if entry.text:
        return mask_phones(entry.text) if masked else entry.text
    if entry.msgtype is None:
        return "（消息不在存档中）"
    if entry.msgtype != "text":
        return f"［{MSGTYPE_LABELS.get(entry.msgtype, entry.msgtype)}］"
    return "（原文已过保留期）"


def actions(entry: review.Entry, sent: list[tuple[str, str]]) -> list[str]:
    """What the strike led to, with each message's delivery as the outbox has it."""
    found = [f"{SENT_LABELS[action]}（{OUTBOX_STATUS.get(status, status)}）"
             for action, status in sent]
    if entry.action == PRAISE:
        found.append(ACTION_LABELS[PRAISE])
    elif entry.action and not found:
        found.append(f"{ACTION_LABELS.get(entry.action, entry.action)}（未发送）")
    return found


def strike_row(entry: review.Entry, flows: Flows, sent: list[tuple[str, str]],
               me: str | None) -> StrikeRow:
    reviewed = None
    if entry.reviewed_by:
        reviewed = f"{labels.reviewer(entry.reviewed_by, me)} · {local(entry.reviewed_at)}"
    return StrikeRow(
        id=entry.id, kind=entry.kind, kind_label=KIND_LABELS.get(entry.kind, entry.kind),
        status=entry.status, status_label=STATUS_LABELS.get(entry.status, entry.status),
        rule=entry.rule, rule_label=flows.group_rules.label_of(entry.rule), points=entry.points,
        member=member_label(entry.name, entry.phone, entry.userid), userid=entry.userid,
        member_id=entry.member_id, group=entry.group or entry.chat_id, chat_id=entry.chat_id,
        at=local(entry.at), evidence=evidence(entry), has_text=bool(entry.text),
        actions=actions(entry, sent), reviewed=reviewed,
        decidable=tuple(d for d, statuses in review.DECISIONS.items()
                        if entry.status in statuses))


async def listing(session: AsyncSession, form: Form, flows: Flows, me: str,
                  now: datetime) -> dict[str, Any]:
    """The page's data: the ledger page asked for, the group filter's choices, the praise
    candidates."""
    wanted = review.LedgerFilter(kind=form.kind, status=form.status, chat_id=form.group)
    total, entries = await review.ledger(session, wanted, PAGE_SIZE,
                                         (form.page - 1) * PAGE_SIZE)
    sent = await review.messages_sent(session, entries)
    thresholds = flows.group_rules.thresholds
    candidates = await review.praise_candidates(
        session, now - timedelta(days=thresholds.window_days), thresholds.praise)
    return {
        "rows": [strike_row(e, flows, sent.get(e.id, []), me) for e in entries],
        "total": total, "pages": max(1, -(-total // PAGE_SIZE)),
        "groups": await review.ledger_groups(session),
        "candidates": [CandidateRow(member_label(c.name, c.phone, c.userid), c.userid,
                                    c.member_id, c.group or c.chat_id, c.chat_id, c.points,
                                    c.answers, c.intros, local(c.last_at)) for c in candidates],
        "thresholds": thresholds,
        "rules": [(rule.label, rule.points) for rule in flows.group_rules.violations],
    }


def notice(payload: dict[str, Any]) -> str | None:
    """The words of a decision's outcome (the flash cookie carries the decision and ids)."""
    decision, done, left = payload.get("a"), payload.get("done"), payload.get("left")
    if decision not in DECISION_LABELS or not isinstance(done, list) or \
            not isinstance(left, list):
        return None
    verb = DECISION_LABELS[decision]
    said = f"已{verb} {len(done)} 条记录。" if done else f"没有{verb}任何记录。"
    if left:
        listed = "、".join(f"#{n}" for n in left if isinstance(n, int))
        said += f"{listed} 的状态不允许{verb}（可能已被他人处理，或消息已撤回），未改动。"
    return said
