"""Referrals for the operator-facing tests (the /koc command, the funnel by referrer, the
`sopbot koc` commands), made with the domain's own functions: a friend add through a
recommender's code (`referrals.touch`), then the settle job (`referrals.settle`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.engine.db import Database
from app.groups.models import GroupMember
from app.koc import referrals
from app.koc.models import EARNED, FLAGGED, TIER, Recommender, Referral, Reward
from app.members.models import Member
from tests.koc.people import T0, koc, member

SETTLED = T0 + timedelta(hours=1)


async def touch(db: Database, rec: Recommender, who: Member, at: datetime = T0,
                new: bool = True) -> Referral | None:
    async with db.unit_of_work() as session:
        row = await session.get(Member, who.id)
        assert row is not None
        return await referrals.touch(session, row, koc().state_of(rec.short_id), at, koc(),
                                     new_member=new)


async def referred(db: Database, rec: Recommender, at: datetime = T0,
                   **fields: Any) -> Member:
    """A new person who came through `rec`'s code (a verified shop in its group by default)."""
    friend = await member(db, at=at, **fields)
    await touch(db, rec, friend, at)
    return friend


async def settle(db: Database, now: datetime = SETTLED) -> dict[str, int]:
    async with db.unit_of_work() as session:
        return await referrals.settle(session, now, koc())


async def flag(db: Database, rec: Recommender, reason: str = "burst",
               at: datetime = T0) -> tuple[Member, int]:
    """A referral that tripped a velocity rule: its referee, and the referral's id."""
    friend = await referred(db, rec, at)
    async with db.unit_of_work() as session:
        referral = await session.scalar(select(Referral).where(
            Referral.referee_member_id == friend.id, Referral.recommender_id == rec.id))
        assert referral is not None
        referral.status, referral.reason = FLAGGED, reason
        return friend, referral.id


async def earned(db: Database, rec: Recommender, name: str = "bronze",
                 label: str = "50 元进货券") -> int:
    """A tier reward earned by `rec`, waiting for approval; its id."""
    async with db.unit_of_work() as session:
        reward = Reward(key=f"tier:{rec.id}:{name}", recommender_id=rec.id, kind=TIER,
                        name=name, label=label, status=EARNED, earned_at=T0, attempts=0)
        session.add(reward)
        await session.flush()
        return reward.id


async def nickname(db: Database, who: Member, name: str) -> None:
    """`who`'s group nickname, as groupchat/get gives it."""
    async with db.unit_of_work() as session:
        session.add(GroupMember(chat_id="wrNorth", userid=who.external_userid, type=2,
                                joined_at=T0, nickname=name))
