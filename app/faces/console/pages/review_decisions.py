"""Deciding reviews from the console, one or many at once, and the notice that reports it.

Each decision is its own unit of work through app.verify.service.decide, with the routing hook
the API uses, so an approval routes the member exactly as /api/reviews does. A review that is
no longer pending (decided twice, or by someone else since the page was loaded) changes nothing:
the service refuses it, and the notice says who decided what and when. In a batch the others
still go through, even past one that fails unexpectedly (a database error: logged, and
reported as failed); the notice reports each one. Approving a phone or platform user id linked
to another member is refused the same way (the notice says to move the link or reject); "move"
approves by moving it, the other member unlinked with its history kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.db import utcnow
from app.engine.logs import get_logger
from app.faces.console import flash, labels, times
from app.faces.console.params import MAX_REASON, ids_of, possible_row_id
from app.flows import Flows
from app.members.models import Member
from app.routing.service import after_approval
from app.verify import service
from app.verify.models import APPROVED, REJECTED, Verification

if TYPE_CHECKING:
    from app.faces.web.runtime import Runtime

log = get_logger("sopbot.console")

PAGE = "reviews"  # the flash cookie's tag for the queue's notices
ACTIONS = {"approve": APPROVED, "move": APPROVED, "reject": REJECTED}
MAX_BATCH = 200  # more than a page shows; a bigger form is not from the console
ERRORS = {
    "no_ids": "请先勾选要处理的认证。",
    "too_many": f"一次最多处理 {MAX_BATCH} 条。",
    "bad_action": "未知的操作。",
    "no_reason": "拒绝时请选择或填写原因。",
    "bad_reason": "所选原因不在列表中，请刷新页面后重试。",
    "long_reason": f"原因最多 {MAX_REASON} 个字。",
}


@dataclass(frozen=True)
class Decision:
    status: str
    ids: list[int]
    reason: str | None
    move: bool = False  # approve by moving the link from the members that hold it


def parse(action: str, ids: list[int], picked: str, note: str,
          flows: Flows) -> Decision | str:
    """The decision the form asks for, or the code of what is wrong with it (ERRORS)."""
    ids = list(dict.fromkeys(ids))  # a box ticked twice decides once
    if not ids:
        return "no_ids"
    if len(ids) > MAX_BATCH:
        return "too_many"
    if action not in ACTIONS:
        return "bad_action"
    if ACTIONS[action] == APPROVED:
        return Decision(APPROVED, ids, None, move=action == "move")
    return _rejection(ids, picked.strip(), note.strip(), flows)


def _rejection(ids: list[int], picked: str, note: str, flows: Flows) -> Decision | str:
    if picked and picked not in flows.verify.review_reasons:
        return "bad_reason"
    reason = "；".join(part for part in (picked, note) if part)
    if not reason:
        return "no_reason"
    return Decision(REJECTED, ids, reason) if len(reason) <= MAX_REASON else "long_reason"


@dataclass
class Outcome:
    """What became of each review of a decision; stored in the flash cookie as ids only."""

    status: str
    done: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)  # another member holds the phone or id

    def payload(self) -> dict[str, Any]:
        return {"s": self.status, "done": self.done, "stale": self.stale,
                "missing": self.missing, "failed": self.failed, "held": self.held}


def refusal(code: str) -> dict[str, Any]:
    """The payload of a form `parse` refused (ERRORS' code)."""
    return {"error": code}


def take(request: Request, operator: str) -> dict[str, Any] | None:
    """The payload left for the queue."""
    return flash.take(request, operator, PAGE)


async def run(runtime: Runtime, decision: Decision, operator: str) -> Outcome:
    outcome = Outcome(decision.status)
    hook = after_approval(runtime.flows, runtime.settings)
    for review_id in decision.ids:
        found = outcome.missing
        if possible_row_id(review_id):
            found = await _decide_one(runtime, review_id, decision, operator, hook, outcome)
        found.append(review_id)
    return outcome


async def _decide_one(runtime: Runtime, review_id: int, decision: Decision, operator: str,
                      hook: service.OnApproved, outcome: Outcome) -> list[int]:
    """Decide one review in its own unit of work; the outcome's list it belongs to."""
    try:
        async with runtime.db.unit_of_work() as session:
            await service.decide(session, review_id, decision.status, operator,
                                 decision.reason, utcnow(), hook, decision.move)
    except service.ReviewNotFound:
        return outcome.missing
    except service.AlreadyDecided:
        return outcome.stale
    except service.LinkHeld:
        return outcome.held
    except Exception:  # the ones before are committed: report this one, go on with the rest
        log.exception("console_review_decide_failed", verification_id=review_id,
                      status=decision.status, reviewer=operator)
        return outcome.failed
    log.info("console_review_decided", verification_id=review_id, status=decision.status,
             reviewer=operator, moved=decision.move)
    return outcome.done


@dataclass(frozen=True)
class Notice:
    kind: str  # "ok", "warn" or "error": the notice's colour
    title: str
    lines: list[str] = field(default_factory=list)


async def notices(session: AsyncSession, payload: dict[str, Any] | None, flows: Flows,
                  me: str) -> list[Notice]:
    """The notices a decision's payload reads as, from the reviews as they are now."""
    if not payload:
        return []
    if "error" in payload:
        return [Notice("error", ERRORS.get(str(payload["error"]), "操作未完成。"))]
    status, done, stale = str(payload.get("s")), ids_of(payload, "done"), ids_of(payload, "stale")
    rows = await _rows(session, done + stale)
    found = [Notice("ok", _done_title(status, len(done)),
                    [_done_line(*rows[i], flows) for i in done if i in rows])] if done else []
    if stale:
        found.append(Notice("warn", f"{len(stale)} 条未作更改：在您操作之前已被处理",
                            [_stale_line(rows[i][0], status, me) for i in stale if i in rows]))
    return found + _unsettled(payload)


def _unsettled(payload: dict[str, Any]) -> list[Notice]:
    """The reviews no decision reached: unknown ids, and those that failed unexpectedly."""
    found = []
    if held := ids_of(payload, "held"):
        found.append(Notice("warn", f"{len(held)} 条未通过：手机号或平台用户 ID 已绑定其他会员，"
                                    f"请在详情中选择转移绑定或拒绝：{_listed(held)}"))
    if missing := ids_of(payload, "missing"):
        found.append(Notice("error", "找不到这些认证：" + _listed(missing)))
    if failed := ids_of(payload, "failed"):
        found.append(Notice("error", f"{len(failed)} 条处理失败（系统出错，已记录日志），"
                                     f"请稍后刷新查看并重试：{_listed(failed)}"))
    return found


def _listed(ids: list[int]) -> str:
    return "、".join(f"#{i}" for i in ids)


async def _rows(session: AsyncSession, ids: list[int]) -> dict[int, tuple[Verification, Member]]:
    found = await session.execute(select(Verification, Member).join(
        Member, Member.id == Verification.member_id).where(Verification.id.in_(ids)))
    return {v.id: (v, m) for v, m in found}


def _done_title(status: str, count: int) -> str:
    return f"已{'通过' if status == APPROVED else '拒绝'} {count} 条"


def _done_line(row: Verification, member: Member, flows: Flows) -> str:
    who = f"#{row.id} {member.external_userid} {labels.phone_masked(row.phone)}"
    if row.status == REJECTED:
        return f"{who}：已拒绝，原因：{row.reason}"
    if member.segment:
        return f"{who}：已通过，分到「{labels.segment(flows, member.segment)}」"
    return f"{who}：已通过（分群规则没有给出分群）"


def _stale_line(row: Verification, attempted: str, me: str) -> str:
    """Who decided what and when, and that this operator's decision did not count."""
    verb = labels.REVIEW_STATUS.get(row.status, row.status)
    reason = f"（原因：{row.reason}）" if row.reason else ""
    tried = labels.REVIEW_STATUS.get(attempted, attempted)
    who = labels.reviewer(row.reviewer, me)
    return (f"#{row.id}：已由{_spaced(who)}于 {times.local(row.decided_at)} "
            f"{verb}{reason}，本次的“{tried}”未生效。")


def _spaced(name: str) -> str:
    """A space between Chinese and a Latin userid, none next to Chinese punctuation."""
    return f"{' ' if name[:1].isascii() else ''}{name}{' ' if name[-1:].isascii() else ''}"
