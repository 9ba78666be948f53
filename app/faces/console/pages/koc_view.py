"""What the KOC page (推荐官) shows: the leaderboard, the reward ledger, the referrals (flagged
first), the KOC candidates and the KOCs, with Chinese labels and phone numbers masked
(app/koc/report.py masks them). Reads only, apart from the decisions' notices' wording."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.logs import mask_phones
from app.faces.console import labels
from app.faces.console.times import NONE, local
from app.flows import Flows
from app.koc import kocs, report
from app.koc import models as m
from app.koc import referrals as rules
from app.koc.rewards import DECISIONS

PAGE_SIZE = 50
REFERRAL_LABELS = {m.FLAGGED: "待人工判断", m.PENDING: "待定", m.CREDITED: "已计入",
                   m.REJECTED: "不计入", m.NOT_FIRST: "非首次推荐"}
REWARD_LABELS = {m.EARNED: "待审批", m.APPROVED: "已批准（待发放）", m.ISSUED: "已发放",
                 m.DECLINED: "已拒绝"}
REASON_LABELS = {
    rules.SELF: "推荐人本人", rules.ALREADY_MEMBER: "原本已是会员",
    rules.FIRST_ELSEWHERE: "已由其他推荐官首次推荐", rules.CONSUMER: "消费者（非商家）",
    rules.NOT_APPROVED: "未通过认证", rules.DUPLICATE_PHONE: "手机号与其他会员重复",
    rules.DUPLICATE_ID: "平台账号与其他会员重复", rules.ALREADY_CREDITED: "此人已被计入过",
    rules.BURST: "短时间内新增过多", rules.PHONE_RANGE: "手机号段集中",
    rules.BY_OPERATOR: "运营驳回"}
CODE_LABELS = {m.NO_CODE: "未生成", m.CODE_REQUESTED: "生成中", m.CODE_READY: "可用",
               m.CODE_REMOVED: "已删除（闲置）"}
REWARD_DECISIONS = {"approve": "批准", "decline": "拒绝", "issued": "标记已发放"}
ASSIGN_LABELS = {kocs.TOPIC: "话题讨论", kocs.GUEST: "嘉宾分享会"}


@dataclass(frozen=True)
class Form:
    """The page's filters and pages: `reward` and `referral` are statuses ("" = all)."""

    reward: str = ""
    referral: str = ""
    page: int = 1  # the leaderboard's
    wpage: int = 1  # the ledger's
    rpage: int = 1  # the referrals'

    def query(self, **pages: int) -> dict[str, Any]:
        values = {"reward": self.reward, "referral": self.referral, "page": self.page,
                  "wpage": self.wpage, "rpage": self.rpage} | pages
        return {k: v for k, v in values.items() if v and v != 1}

    def problem(self) -> str | None:
        if self.reward and self.reward not in REWARD_LABELS:
            return "未知的奖励状态。"
        if self.referral and self.referral not in REFERRAL_LABELS:
            return "未知的推荐状态。"
        return None


def who(person: report.Person) -> str:
    """How the page names a member: #id and their group nickname or directory name (as the
    funnel's referrer list does), else the masked phone."""
    named = person.name or (mask_phones(person.phone) if person.phone else None)
    return f"#{person.member_id} {named}" if named else f"#{person.member_id}"


def rank_of(period: str | None, segment: str | None, flows: Flows) -> str | None:
    """A rank reward's month and segment (two segments each have a first place)."""
    if not period:
        return None
    return f"{period} · {labels.segment(flows, segment)}" if segment else period


def reward_line(reward: report.RewardBrief, flows: Flows) -> str:
    rank = rank_of(reward.period, reward.segment, flows)
    return (f"{reward.label}{f'（{rank}）' if rank else ''}："
            f"{REWARD_LABELS.get(reward.status, reward.status)}")


def standing_row(s: report.RecommenderRow, flows: Flows) -> dict[str, Any]:
    return {"id": s.id, "member_id": s.person.member_id, "userid": s.person.external_userid,
            "who": who(s.person), "segment": labels.segment(flows, s.person.segment),
            "short_id": s.short_id, "code": CODE_LABELS.get(s.code, s.code),
            "source": source_label(s.source), "referred": s.counts.referred,
            "credited": s.counts.credited, "flagged": s.counts.flagged,
            "pending": s.counts.pending, "rewards": [reward_line(r, flows) for r in s.rewards]}


def source_label(source: str) -> str:
    if source.startswith("nominated:"):
        return f"运营提名（{source.removeprefix('nominated:')}）"
    return {"asked": "客服申请"}.get(source, source)


def referral_row(r: report.ReferralRow, me: str) -> dict[str, Any]:
    revoked = r.revoked_at is not None
    return {"id": r.id, "status": r.status, "at": local(r.added_at),
            "status_label": "已撤销" if revoked else REFERRAL_LABELS.get(r.status, r.status),
            "reason": REASON_LABELS.get(r.reason or "", r.reason or ""),
            "recommender": who(r.referrer), "recommender_member_id": r.referrer.member_id,
            "referee": who(r.referee), "referee_member_id": r.referee.member_id,
            "referee_status": labels.member_status(r.referee_status),
            "decided": _decided(r.decided_by, r.decided_at, me),
            "credit_id": r.credit_id if not revoked else None,
            "revoked": _revoked(r, me) if revoked else None}


def _decided(by: str | None, at: datetime | None, me: str) -> str | None:
    return f"{labels.reviewer(by, me)} · {local(at)}" if by else None


def _revoked(r: report.ReferralRow, me: str) -> str:
    reason = mask_phones(r.revoke_reason or "")
    return f"{labels.reviewer(r.revoked_by, me)} · {local(r.revoked_at)}：{reason}"


def _issued(by: str | None, at: datetime | None, me: str) -> str | None:
    if at is None:
        return None
    hand = (by or "").startswith("hand:")
    return f"{'手动 · ' if hand else ''}{labels.reviewer((by or '').removeprefix('hand:'), me)}" \
           f" · {local(at)}"


def ledger_row(row: report.RewardRow, me: str, flows: Flows) -> dict[str, Any]:
    w = row.reward
    return {"id": w.id, "status": w.status, "status_label": REWARD_LABELS.get(w.status, w.status),
            "label": w.label, "kind": "排名" if w.kind == m.RANK else "阶梯",
            "period": rank_of(w.period, w.segment, flows) or NONE,
            "member_id": row.person.member_id,
            "who": who(row.person), "earned": local(w.earned_at),
            "decided": _decided(w.decided_by, w.decided_at, me),
            "issued": _issued(w.issued_by, w.issued_at, me), "ref": w.issue_ref,
            "note": mask_phones(w.note) if w.note else None,
            "error": mask_phones(w.last_error) if w.last_error else None,
            "attempts": w.attempts,
            "decidable": [a for a, (allowed, _) in DECISIONS.items() if w.status in allowed]}


def candidate_row(c: kocs.Candidate, person: report.Person | None) -> dict[str, Any]:
    reasons = {"referrals": "推荐", "answers": "答疑", "contributions": "贡献分"}
    return {"member_id": c.member_id, "userid": c.external_userid, "score": c.score,
            "who": who(person) if person else f"#{c.member_id}",
            "koc": c.koc, "reasons": "、".join(f"{reasons.get(k, k)} {v}"
                                              for k, v in c.reasons.items() if v)}


def koc_row(row: report.KocRow, flows: Flows, me: str) -> dict[str, Any]:
    return {"member_id": row.person.member_id, "userid": row.person.external_userid,
            "who": who(row.person), "segment": labels.segment(flows, row.person.segment),
            "tasks": row.assignments,
            "promoted": f"{labels.reviewer(row.promoted_by, me)} · {local(row.promoted_at)}"}


async def listing(session: AsyncSession, form: Form, flows: Flows, me: str,
                  now: datetime) -> dict[str, Any]:
    """The page's data: every section, each paged, the filters' tallies."""
    koc = flows.koc
    assert koc is not None
    board_total, board = await report.leaderboard(session, PAGE_SIZE, _skip(form.page))
    reward_total, ledger = await report.reward_ledger(session, form.reward or None, PAGE_SIZE,
                                                      _skip(form.wpage))
    referral_total, referrals = await report.referrals(session, form.referral or None,
                                                       PAGE_SIZE, _skip(form.rpage))
    candidates = await kocs.candidates(session, koc, now)
    named = await report.people(session, [c.member_id for c in candidates])
    return {
        "board": [standing_row(s, flows) for s in board], "board_pages": _pages(board_total),
        "board_total": board_total,
        "ledger": [ledger_row(r, me, flows) for r in ledger], "ledger_pages": _pages(reward_total),
        "ledger_total": reward_total,
        "reward_counts": {s: await report.count_rewards(session, s) for s in REWARD_LABELS},
        "referrals": [referral_row(r, me) for r in referrals],
        "referral_pages": _pages(referral_total), "referral_total": referral_total,
        "referral_counts": {s: await report.count_referrals(session, s)
                            for s in REFERRAL_LABELS},
        "candidates": [candidate_row(c, named.get(c.member_id)) for c in candidates],
        "kocs": [koc_row(r, flows, me) for r in await report.current_kocs(session)],
        "koc": koc}


def _skip(page: int) -> int:
    return (page - 1) * PAGE_SIZE


def _pages(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def notice(payload: dict[str, Any]) -> str | None:
    """The words of a POST's outcome (the flash cookie carries a code and ids)."""
    action = payload.get("a")
    if action in REWARD_DECISIONS:
        return _counted(REWARD_DECISIONS[action], "奖励", payload)
    said = NOTICES.get(str(action))
    if said is None:
        return None
    try:
        return said.format(**{k: v for k, v in payload.items() if k != "a"})
    except (KeyError, IndexError, ValueError):
        return None


def _counted(verb: str, what: str, payload: dict[str, Any]) -> str | None:
    done, left = payload.get("done"), payload.get("left")
    if not isinstance(done, list) or not isinstance(left, list):
        return None
    said = f"已{verb} {len(done)} 条{what}。" if done else f"没有{verb}任何{what}。"
    if left:
        listed = "、".join(f"#{n}" for n in left if isinstance(n, int))
        said += f"{listed} 的状态不允许{verb}（可能已被他人处理），未改动。"
    return said


NOTICES = {
    "credited": "推荐 #{id} 已计入。",
    "rejected": "推荐 #{id} 已驳回，不计入。",
    "still": "推荐 #{id} 未改动：{why}",
    "revoked": "已撤销推荐 #{id} 的计入，此人今后也不会再被计入。已获得的奖励请在奖励台账中处理。",
    "not_revoked": "推荐 #{id} 的计入之前已被撤销，未改动。",
    "promoted": "会员 #{id} 已设为 KOC（企业微信标签将通过发件箱打上）。",
    "demoted": "会员 #{id} 已取消 KOC（企业微信标签将通过发件箱移除）。",
    "unchanged": "会员 #{id} 的 KOC 身份本来如此，未改动。",
    "ready": "会员 #{id} 已是推荐官，推荐码已重新发送（{via}）。",
    "coming": "会员 #{id} 已成为推荐官，推荐码生成后将自动发送给 TA。",
    "assigned": "已为会员 #{id} 安排{kind}「{title}」，并通知其对接员工。",
}
DELIVERY_LABELS = {"kf": "通过微信客服", "staff": "通过对接员工转发",
                   "none": "未能发送：未设置 WECOM_AGENT_ID 且客服会话已关闭"}
