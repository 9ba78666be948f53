"""The programme at a glance, for operators (the `/koc` command, `sopbot koc list`).

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
    NOT_FIRST,
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


@dataclass(frozen=True)
class RosterLine:
    recommender_id: int
    member_id: int
    name: str
    active: bool
    source: str
    code: str
    referrals: int  # first touches (not `not_first`), all time
    credited: int  # credits not revoked
    rewards: int  # rewards in the ledger, any status


async def name_of(session: AsyncSession, member_id: int, external_userid: str) -> str:
    """`#12 小王` when their group nickname is known, else `#12`."""
    nick = await honor.nickname(session, external_userid)
    return f"#{member_id}" if nick == honor.NO_NICKNAME else f"#{member_id} {nick}"


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
    return [Ranked(i, await name_of(session, i, u), int(n)) for i, u, n in rows]


async def flagged(session: AsyncSession, limit: int = 20) -> tuple[int, list[FlaggedReferral]]:
    """How many referrals wait for an operator, and the oldest `limit` of them."""
    count = await _count(session, select(func.count()).select_from(Referral)
                         .where(Referral.status == FLAGGED))
    rows = (await session.execute(
        select(Referral, Member.id, Member.external_userid)
        .join(Recommender, Recommender.id == Referral.recommender_id)
        .join(Member, Member.id == Recommender.member_id)
        .where(Referral.status == FLAGGED).order_by(Referral.id).limit(limit))).all()
    return count, [FlaggedReferral(r.id, await name_of(session, i, u), r.referee_member_id,
                                   r.reason or "", r.added_at) for r, i, u in rows]


async def roster(session: AsyncSession) -> list[RosterLine]:
    """Every recommender, oldest first, with their referrals, credits and rewards."""
    referred = (select(func.count()).where(Referral.recommender_id == Recommender.id,
                                           Referral.status != NOT_FIRST).scalar_subquery())
    credited = (select(func.count()).select_from(ReferralCredit).where(
        ReferralCredit.recommender_id == Recommender.id, ReferralCredit.revoked_at.is_(None))
        .scalar_subquery())
    rewarded = (select(func.count()).select_from(Reward)
                .where(Reward.recommender_id == Recommender.id).scalar_subquery())
    rows = (await session.execute(
        select(Recommender, Member.external_userid, referred, credited, rewarded)
        .join(Member, Member.id == Recommender.member_id).order_by(Recommender.id))).all()
    return [RosterLine(rec.id, rec.member_id, await name_of(session, rec.member_id, uid),
                       rec.active, rec.source, rec.code, int(n), int(c), int(w))
            for rec, uid, n, c, w in rows]



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
    return [RankReward(r, r.key.split(":", 2)[2], await name_of(session, i, u))
            for r, i, u in rows]
