"""The programme at a glance, for operators (the `/koc` command, `sopbot koc ranks`).

- The month is Asia/Shanghai's, as credits and monthly ranks count it.
- "This month's referrals" are the friend adds through a recommender's code in the month, by
  their status now; "credited" counts the month's credits not revoked (a credit's month is when
  it was credited, so the two need not match).
- What waits for an operator is counted whatever its month: flagged referrals and rewards
  earned but not yet approved.
- Recommenders are named `#<member id>` plus their group nickname when WeCom gave one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.config import SHANGHAI
from app.koc import honor
from app.koc.models import (
    EARNED,
    FLAGGED,
    RANK,
    Recommender,
    Referral,
    ReferralCredit,
    Reward,
)
from app.members.models import Member

TOP = 5


@dataclass(frozen=True)
class Ranked:
    member_id: int
    name: str
    count: int


@dataclass(frozen=True)
class Overview:
    month: str  # YYYY-MM, Asia/Shanghai
    recommenders: int  # active ones
    referrals: dict[str, int]  # this month's friend adds through a code, by status
    credited: int  # this month's credits, not revoked
    flagged: int  # waiting for an operator, any month
    earned: int  # rewards waiting for approval, any month
    top: list[Ranked] = field(default_factory=list)


@dataclass(frozen=True)
class FlaggedReferral:
    id: int
    recommender: str
    referee_member_id: int
    reason: str
    added_at: datetime


async def names(session: AsyncSession, people: list[tuple[int, str]]) -> dict[int, str]:
    """(member id, external userid) → `#12 小王` when their group nickname is known, else
    `#12`; every nickname in one query."""
    known = await honor.nicknames(session, [userid for _, userid in people])
    return {i: f"#{i} {known[u]}" if u in known else f"#{i}" for i, u in people}


def month_of(now: datetime) -> str:
    return f"{now.astimezone(SHANGHAI):%Y-%m}"


def month_start(month: str) -> datetime:
    """The first instant of a YYYY-MM month in Asia/Shanghai."""
    return datetime.strptime(month, "%Y-%m").replace(tzinfo=SHANGHAI)


async def overview(session: AsyncSession, now: datetime, top: int = TOP) -> Overview:
    """The programme's numbers for the operator's month (see the module's rules)."""
    month = month_of(now)
    return Overview(
        month=month,
        recommenders=await _count(session, select(func.count()).select_from(Recommender)
                                  .where(Recommender.active.is_(True))),
        referrals=await _referrals_by_status(session, month_start(month)),
        credited=await _count(session, select(func.count()).select_from(ReferralCredit).where(
            ReferralCredit.month == month, ReferralCredit.revoked_at.is_(None))),
        flagged=await _count(session, select(func.count()).select_from(Referral)
                             .where(Referral.status == FLAGGED)),
        earned=await _count(session, select(func.count()).select_from(Reward)
                            .where(Reward.status == EARNED)),
        top=await top_of_month(session, month, top))


async def _count(session: AsyncSession, query: object) -> int:
    return int(await session.scalar(query) or 0)  # type: ignore[call-overload]


async def _referrals_by_status(session: AsyncSession, since: datetime) -> dict[str, int]:
    rows = await session.execute(select(Referral.status, func.count()).where(
        Referral.added_at >= since).group_by(Referral.status))
    return {status: int(n) for status, n in rows.all()}


async def top_of_month(session: AsyncSession, month: str, limit: int) -> list[Ranked]:
    """The month's recommenders by credits not revoked (ties: who got there first)."""
    rows = (await session.execute(
        select(Member.id, Member.external_userid, func.count(ReferralCredit.id).label("n"))
        .join(Recommender, Recommender.id == ReferralCredit.recommender_id)
        .join(Member, Member.id == Recommender.member_id)
        .where(ReferralCredit.month == month, ReferralCredit.revoked_at.is_(None))
        .group_by(Member.id, Member.external_userid)
        .order_by(func.count(ReferralCredit.id).desc(), func.max(ReferralCredit.at), Member.id)
        .limit(limit))).all()
    named = await names(session, [(i, u) for i, u, _ in rows])
    return [Ranked(i, named[i], int(n)) for i, _, n in rows]


async def flagged(session: AsyncSession, limit: int = 20) -> tuple[int, list[FlaggedReferral]]:
    """How many referrals wait for an operator, and the oldest `limit` of them."""
    count = await _count(session, select(func.count()).select_from(Referral)
                         .where(Referral.status == FLAGGED))
    rows = (await session.execute(
        select(Referral, Member.id, Member.external_userid)
        .join(Recommender, Recommender.id == Referral.recommender_id)
        .join(Member, Member.id == Recommender.member_id)
        .where(Referral.status == FLAGGED).order_by(Referral.id).limit(limit))).all()
    named = await names(session, [(i, u) for _, i, u in rows])
    return count, [FlaggedReferral(r.id, named[i], r.referee_member_id, r.reason or "",
                                   r.added_at) for r, i, _ in rows]


async def flagged_referral(session: AsyncSession, referral_id: int) -> Referral | None:
    """The referral, locked, while it waits for an operator; None otherwise (decide_flagged
    itself decides whatever it is given)."""
    return await session.scalar(select(Referral).where(
        Referral.id == referral_id, Referral.status == FLAGGED).with_for_update())


@dataclass(frozen=True)
class RankReward:
    reward: Reward
    place: str  # "<segment>:<place>" of its key
    name: str


async def rank_rewards(session: AsyncSession, month: str) -> list[RankReward]:
    """The month's rank rewards, by segment and place, with their recommender's name."""
    rows = (await session.execute(
        select(Reward, Member.id, Member.external_userid)
        .join(Recommender, Recommender.id == Reward.recommender_id)
        .join(Member, Member.id == Recommender.member_id)
        .where(Reward.kind == RANK, Reward.period == month).order_by(Reward.key))).all()
    named = await names(session, [(i, u) for _, i, u in rows])
    return [RankReward(r, f"{r.segment}:{r.key.rsplit(':', 1)[1]}", named[i])
            for r, i, _ in rows]
