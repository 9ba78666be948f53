"""The reward ledger: earned → approved by an operator → issued (by the platform's webhook or
marked by hand), or declined; each step with who and when. sopbot moves no money.

A tier is earned once per recommender, when their credited (not revoked) referrals reach its
count. Ranks are earned per month and segment by the month's top recommenders, once the month
is over (Asia/Shanghai). Every reward has a unique key, so a re-run earns nothing twice.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.config import SHANGHAI
from app.engine.db import insert_for
from app.engine.logs import get_logger
from app.koc.flows import KocFlows
from app.koc.models import (
    APPROVED,
    DECLINED,
    EARNED,
    ISSUED,
    RANK,
    TIER,
    Recommender,
    ReferralCredit,
    Reward,
)

log = get_logger("sopbot.koc")
# An operator's decisions, and the statuses each may start from.
DECISIONS = {"approve": ((EARNED,), APPROVED), "decline": ((EARNED, APPROVED), DECLINED),
             "issued": ((APPROVED,), ISSUED)}


async def credited(session: AsyncSession, recommender_id: int) -> int:
    return await session.scalar(select(func.count()).select_from(ReferralCredit).where(
        ReferralCredit.recommender_id == recommender_id,
        ReferralCredit.revoked_at.is_(None))) or 0


async def on_credit(session: AsyncSession, rec: Recommender, now: datetime,
                    koc: KocFlows) -> list[str]:
    """The tiers the recommender reached with this credit; the keys of rewards earned now."""
    count, earned = await credited(session, rec.id), []
    for tier in koc.tiers:
        if count >= tier.referrals and await _earn(
                session, f"tier:{rec.id}:{tier.name}", rec.id, TIER, tier.name, tier.reward,
                None, now):
            earned.append(tier.name)
    return earned


async def _earn(session: AsyncSession, key: str, recommender_id: int, kind: str, name: str,
                label: str, period: str | None, now: datetime) -> bool:
    result = await session.execute(insert_for(session, Reward).values(
        key=key, recommender_id=recommender_id, kind=kind, name=name, label=label[:128],
        period=period, status=EARNED, earned_at=now, attempts=0)
        .on_conflict_do_nothing(index_elements=["key"]).returning(Reward.id))
    done = result.scalar() is not None  # no row back: it was earned before
    if done:
        log.info("reward_earned", recommender_id=recommender_id, kind=kind, name=name,
                 period=period)
    return done


def previous_month(now: datetime) -> str:
    today = now.astimezone(SHANGHAI).date()
    first = date(today.year, today.month, 1)
    last_month = date(first.year - (first.month == 1), first.month - 1 or 12, 1)
    return f"{last_month:%Y-%m}"


async def monthly_ranks(session: AsyncSession, month: str, now: datetime,
                        koc: KocFlows) -> int:
    """The month's top recommenders of each segment earn the rank rewards (ties: who got
    there first); the number earned now (0 when run again). A month not over yet (Asia/
    Shanghai) earns nothing: its ranks are not known."""
    if not koc.ranks.rewards or month >= f"{now.astimezone(SHANGHAI):%Y-%m}":
        return 0
    rows = (await session.execute(
        select(ReferralCredit.segment, ReferralCredit.recommender_id,
               func.count().label("n"), func.max(ReferralCredit.at).label("last"))
        .where(ReferralCredit.month == month, ReferralCredit.revoked_at.is_(None))
        .group_by(ReferralCredit.segment, ReferralCredit.recommender_id))).all()
    by_segment: dict[str, list[tuple[int, datetime, int]]] = {}
    for segment, rec_id, n, last in rows:
        by_segment.setdefault(segment or "", []).append((-n, last, rec_id))
    earned = 0
    for segment, entries in sorted(by_segment.items()):
        for place, (_, _, rec_id) in enumerate(sorted(entries)[:len(koc.ranks.rewards)], 1):
            earned += await _earn(session, f"rank:{month}:{segment}:{place}", rec_id, RANK,
                                  f"top{place}", koc.ranks.rewards[place - 1], month, now)
    return earned


async def decide(session: AsyncSession, ids: list[int], action: str, operator: str,
                 now: datetime, note: str | None = None) -> list[int]:
    """Apply an operator's decision to the rewards that may take it; the ids changed."""
    allowed, status = DECISIONS[action]
    rows = await session.scalars(select(Reward).where(Reward.id.in_(ids),
                                                      Reward.status.in_(allowed))
                                 .with_for_update())
    done = []
    for reward in rows:
        reward.status = status
        if status == ISSUED:
            reward.issued_by, reward.issued_at = f"hand:{operator}"[:80], now
        else:
            reward.decided_by, reward.decided_at = operator[:80], now
        reward.note = note or reward.note
        done.append(reward.id)
    if done:
        log.info("rewards_decided", operator=operator, action=action, ids=done)
    return sorted(done)
