"""The funnel's referral steps by referrer (app/koc/funnel_steps.py): per recommender, the
people referred in the period and how far they got (verified, joined, credited), what was
rejected by reason, flagged or pending; second touches left out; named by group nickname."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.engine.db import Database
from app.funnel import service as funnel
from app.koc import funnel_steps, referrals
from app.koc.models import Recommender, ReferralCredit
from app.members.models import LEFT, SUBMITTED, Member
from tests.conftest import rows_of
from tests.koc.people import T0, db, recommender
from tests.koc.referred import SETTLED, flag, nickname, referred, settle, touch

__all__ = ["db"]
WEEK = T0 - timedelta(days=7)


async def steps(db: Database, since: datetime | None = WEEK,
                until: datetime | None = None) -> dict[int, funnel_steps.ReferrerSteps]:
    async with db.reader() as session:
        return {s.member_id: s for s in await funnel_steps.by_referrer(session, since, until)}


async def test_each_step_counts_the_referees_who_got_that_far(db: Database) -> None:
    rec = await recommender(db)
    await nickname(db, await member_of(db, rec), "小王")
    # An hour apart and each from a phone range of its own: no velocity rule trips.
    at, phone = (T0 + timedelta(hours=n) for n in range(6)), (f"13{n}12345678" for n in range(6))
    for _ in range(2):  # verified shops in their group: credited
        await referred(db, rec, next(at), phone=next(phone))
    await referred(db, rec, next(at), phone=next(phone), status="routed")  # pending: no group
    await referred(db, rec, next(at), phone=next(phone), status=SUBMITTED, link_state=None)
    await referred(db, rec, next(at), phone=next(phone), identity="consumer",
                   status="rejected", link_state=None)
    await flag(db, rec, "burst", T0 + timedelta(hours=6))  # verified and joined, waiting
    assert await settle(db) == {"credited": 2, "rejected": 1}
    one = (await steps(db))[rec.member_id]
    assert one.name == f"#{rec.member_id} 小王"
    assert (one.referred, one.verified, one.joined, one.credited, one.flagged, one.pending) == (
        6, 4, 3, 2, 1, 2)
    assert one.rejected == {"consumer": 1} and one.rejected_total == 1 and one.revoked == 0


async def test_a_referee_who_left_still_counts_as_verified_and_joined_by_the_funnel_events(
        db: Database) -> None:
    rec = await recommender(db)
    friend = await referred(db, rec, status=LEFT)
    async with db.unit_of_work() as session:
        for step in ("approved", "joined"):
            await funnel.record(session, step, f"{step}:{friend.id}", T0, member=friend)
    one = (await steps(db))[rec.member_id]
    assert (one.referred, one.verified, one.joined, one.pending) == (1, 1, 1, 1)
    assert one.name == f"#{rec.member_id}"  # no group nickname known


async def test_second_touches_are_left_out_and_self_scans_rejected(db: Database) -> None:
    first, second = await recommender(db), await recommender(db)
    friend = await referred(db, first)
    await touch(db, second, friend)  # not_first: no step for the second recommender
    await touch(db, first, await member_of(db, first))  # their own code
    one = await steps(db)
    assert set(one) == {first.member_id}
    assert (one[first.member_id].referred, one[first.member_id].rejected) == (2, {"self": 1})


async def test_a_revoked_credit_is_no_longer_credited(db: Database) -> None:
    rec = await recommender(db)
    await referred(db, rec)
    await referred(db, rec)
    await settle(db)
    credit = (await rows_of(db, ReferralCredit))[0]
    async with db.unit_of_work() as session:
        row = await session.get(ReferralCredit, credit.id)
        assert row is not None
        await referrals.revoke(session, row, "op", "fake shop", SETTLED)
    one = (await steps(db))[rec.member_id]
    assert (one.credited, one.revoked, one.joined) == (1, 1, 2)


async def test_the_period_is_the_friend_adds_and_rows_are_ranked(db: Database) -> None:
    early, busy = await recommender(db), await recommender(db)
    await referred(db, early, at=T0 - timedelta(days=10))
    await referred(db, early, at=T0)
    for _ in range(3):
        await referred(db, busy, at=T0 + timedelta(hours=2))
    assert [s.member_id for s in (await steps(db)).values()] == [busy.member_id,
                                                                  early.member_id]
    assert (await steps(db))[early.member_id].referred == 1
    assert (await steps(db, since=None))[early.member_id].referred == 2
    until = await steps(db, since=None, until=T0 + timedelta(hours=1))
    assert set(until) == {early.member_id}
    async with db.reader() as session:
        top = await funnel_steps.by_referrer(session, None, limit=1)
    assert [s.member_id for s in top] == [busy.member_id]


async def member_of(db: Database, rec: Recommender) -> Member:
    async with db.reader() as session:
        owner = await session.get(Member, rec.member_id)
    assert owner is not None
    return owner
