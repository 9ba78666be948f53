"""Referral attribution (app/koc/referrals.py): the first touch of a new person may earn
credit; the recommender themself, a person who was a member already, a consumer, a phone or
platform user id another member has, and a second recommender earn nothing; bursts and phone
ranges wait for an operator; nobody is credited twice, whatever asks."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.engine.db import Database
from app.koc import referrals
from app.koc.models import (
    CREDITED,
    FLAGGED,
    NOT_FIRST,
    PENDING,
    REJECTED,
    Recommender,
    Referral,
    ReferralCredit,
)
from app.koc.recommenders import by_short_id
from app.members.models import APPROVED, ROUTED
from tests.conftest import rows_of
from tests.koc.people import T0, change, db, koc, member, recommender

__all__ = ["db"]


async def touch(db: Database, rec: Recommender, who, *, new: bool = True,  # type: ignore[no-untyped-def]
                at=T0) -> Referral | None:
    async with db.unit_of_work() as session:
        row = await session.get(type(who), who.id)
        return await referrals.touch(session, row, koc().state_of(rec.short_id), at, koc(),
                                     new_member=new)


async def settle(db: Database, **changes) -> dict[str, int]:  # type: ignore[no-untyped-def]
    async with db.unit_of_work() as session:
        return await referrals.settle(session, T0 + timedelta(hours=1), koc(**changes))


async def statuses(db: Database) -> list[tuple[str, str | None]]:
    return [(r.status, r.reason) for r in await rows_of(db, Referral)]


async def test_a_verified_business_in_its_group_credits_its_recommender(db: Database) -> None:
    rec, friend = await recommender(db), await member(db)
    await touch(db, rec, friend)
    assert await settle(db) == {CREDITED: 1}
    credit, = await rows_of(db, ReferralCredit)
    assert (credit.recommender_id, credit.referee_member_id, credit.phone) == (
        rec.id, friend.id, friend.phone)
    assert credit.month == "2026-11" and credit.segment == "shop_north"
    assert await settle(db) == {}  # decided once


async def test_a_referral_waits_until_the_friend_is_verified_and_in_a_group(
        db: Database) -> None:
    rec = await recommender(db)
    friend = await member(db, status=ROUTED, link_state=None)
    await touch(db, rec, friend)
    assert await settle(db) == {}
    await change(db, friend, status=APPROVED, link_state="linked")
    assert await settle(db) == {}  # approved but not in their group yet
    await change(db, friend, status="joined")
    assert await settle(db) == {CREDITED: 1}


async def test_a_consumer_or_a_rejected_friend_earns_nothing(db: Database) -> None:
    rec = await recommender(db)
    await touch(db, rec, await member(db, identity="consumer", status="rejected",
                                      link_state=None))
    await touch(db, rec, await member(db, status="rejected", link_state=None))
    assert await settle(db) == {REJECTED: 2}
    assert await statuses(db) == [(REJECTED, "consumer"), (REJECTED, "not_approved")]
    assert await rows_of(db, ReferralCredit) == []


async def test_a_phone_or_platform_id_another_member_has_earns_nothing(db: Database) -> None:
    rec = await recommender(db)
    await member(db, phone="13800001111", link_state=None, status="left")  # an old account
    await member(db, platform="u-old", link_state=None, status="left")
    await touch(db, rec, await member(db, phone="13800001111"))
    await touch(db, rec, await member(db, platform="u-old"))
    assert await settle(db) == {REJECTED: 2}
    assert await statuses(db) == [(REJECTED, "duplicate_phone"),
                                  (REJECTED, "duplicate_platform_id")]


async def test_the_recommender_themself_earns_nothing(db: Database) -> None:
    owner = await member(db, phone="13900002222", platform="u-me")
    rec = await recommender(db, owner)
    await touch(db, rec, owner, new=False)  # scanning their own code
    # ... and a second account of theirs with the same phone, to which a reviewer moved the
    # link (the one-to-one record lets only one account hold it).
    await change(db, owner, link_state=None)
    await touch(db, rec, await member(db, phone="13900002222", platform="u-x"))
    assert await statuses(db) == [(REJECTED, "self"), (PENDING, None)]
    await settle(db)
    assert await statuses(db) == [(REJECTED, "self"), (REJECTED, "self")]


async def test_only_the_first_recommender_of_a_person_can_earn(db: Database) -> None:
    first, second, friend = await recommender(db), await recommender(db), await member(db)
    await touch(db, first, friend)
    await touch(db, second, friend, new=False)  # the same person scans another code later
    assert await statuses(db) == [(PENDING, None), (NOT_FIRST, "first_touch_elsewhere")]
    assert await settle(db) == {CREDITED: 1}
    credit, = await rows_of(db, ReferralCredit)
    assert credit.recommender_id == first.id


async def test_someone_who_was_a_member_already_earns_nothing(db: Database) -> None:
    rec, old = await recommender(db), await member(db)
    await touch(db, rec, old, new=False)
    assert await statuses(db) == [(REJECTED, "already_member")]


async def test_a_touch_twice_through_the_same_code_is_one_referral(db: Database) -> None:
    rec, friend = await recommender(db), await member(db)
    await touch(db, rec, friend)
    await touch(db, rec, friend, new=False)
    assert len(await rows_of(db, Referral)) == 1


async def test_an_unknown_code_is_no_referral(db: Database) -> None:
    friend = await member(db)
    async with db.unit_of_work() as session:
        row = await session.get(type(friend), friend.id)
        assert await referrals.touch(session, row, "ref.nobody00", T0, koc(),
                                     new_member=True) is None
        assert await by_short_id(session, "nobody00") is None
    assert await rows_of(db, Referral) == []


async def test_a_person_is_credited_once_even_through_two_referrals(db: Database) -> None:
    """The credit's unique indexes hold it, even where the first-touch rule was bypassed."""
    first, second, friend = await recommender(db), await recommender(db), await member(db)
    async with db.unit_of_work() as session:
        for rec in (first, second):
            session.add(Referral(recommender_id=rec.id, referee_member_id=friend.id,
                                 added_at=T0, status=PENDING))
    assert await settle(db) == {CREDITED: 1, REJECTED: 1}
    assert [r.reason for r in await rows_of(db, Referral)] == [None, "already_credited"]


async def test_a_burst_of_referrals_waits_for_an_operator(db: Database) -> None:
    rec = await recommender(db)
    for n in range(3):
        await touch(db, rec, await member(db), at=T0 + timedelta(minutes=n))
    assert await settle(db, credit={"burst": {"max": 2, "minutes": 30}}) == {FLAGGED: 3}
    assert {r.reason for r in await rows_of(db, Referral)} == {"burst"}
    assert await rows_of(db, ReferralCredit) == []


async def test_many_friends_from_one_phone_range_wait_for_an_operator(db: Database) -> None:
    rec = await recommender(db)
    for n in range(3):
        await touch(db, rec, await member(db, phone=f"1370000123{n}"),
                    at=T0 + timedelta(hours=n))
    await touch(db, rec, await member(db, phone="13511112222"), at=T0 + timedelta(hours=5))
    rule = {"phone_range": {"digits": 7, "max": 2}}
    assert await settle(db, credit=rule) == {FLAGGED: 3, CREDITED: 1}


async def test_an_operator_credits_or_rejects_a_flagged_referral(db: Database) -> None:
    rec = await recommender(db)
    for n in range(2):
        await touch(db, rec, await member(db), at=T0 + timedelta(minutes=n))
    await settle(db, credit={"burst": {"max": 1, "minutes": 30}})
    one, two = await rows_of(db, Referral)
    async with db.unit_of_work() as session:
        one = await session.get(Referral, one.id)
        two = await session.get(Referral, two.id)
        assert await referrals.decide_flagged(session, one, True, "op_alice", T0, koc()) \
            == CREDITED
        assert await referrals.decide_flagged(session, two, False, "op_alice", T0, koc()) \
            == REJECTED
    assert await statuses(db) == [(CREDITED, None), (REJECTED, "operator")]
    assert [r.decided_by for r in await rows_of(db, Referral)] == ["op_alice", "op_alice"]


async def test_an_operator_credit_still_refuses_a_duplicate(db: Database) -> None:
    rec = await recommender(db)
    await member(db, phone="13600003333", link_state=None, status="left")
    await touch(db, rec, await member(db, phone="13600003333"))
    async with db.unit_of_work() as session:
        referral = await session.scalar(select(Referral))
        assert referral is not None
        referral.status = FLAGGED  # as a velocity rule would have left it
        assert await referrals.decide_flagged(session, referral, True, "op", T0, koc()) \
            == REJECTED
    assert await statuses(db) == [(REJECTED, "duplicate_phone")]


async def test_a_revoked_credit_is_never_earned_again(db: Database) -> None:
    rec, other, friend = await recommender(db), await recommender(db), await member(db)
    await touch(db, rec, friend)
    await settle(db)
    async with db.unit_of_work() as session:
        credit = await session.scalar(select(ReferralCredit))
        assert credit is not None
        assert await referrals.revoke(session, credit, "op_alice", "假店铺", T0)
        assert not await referrals.revoke(session, credit, "op_alice", "again", T0)
        session.add(Referral(recommender_id=other.id, referee_member_id=friend.id,
                             added_at=T0, status=PENDING))
    assert await settle(db) == {REJECTED: 1}
    assert (await rows_of(db, Referral))[-1].reason == "already_credited"


async def test_friends_still_on_their_way_never_hide_the_decidable_ones(
        db: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(referrals, "SETTLE_BATCH", 2)
    rec = await recommender(db)
    for _ in range(3):  # added, never verified (yet)
        await touch(db, rec, await member(db, status="added", link_state=None))
    await touch(db, rec, await member(db))
    assert await settle(db, credit={"phone_range": {"digits": 10, "max": 10}}) \
        == {CREDITED: 1}


async def test_a_cleared_referral_whose_friend_left_waits_and_is_not_flagged_again(
        db: Database) -> None:
    rec = await recommender(db)
    friends = [await member(db) for _ in range(2)]
    for n, friend in enumerate(friends):
        await touch(db, rec, friend, at=T0 + timedelta(minutes=n))
    rule = {"burst": {"max": 1, "minutes": 30}}
    assert await settle(db, credit=rule) == {FLAGGED: 2}
    await change(db, friends[0], status="left")  # gone from their group meanwhile
    async with db.unit_of_work() as session:
        first = await session.scalar(select(Referral).order_by(Referral.id))
        assert first is not None
        assert await referrals.decide_flagged(session, first, True, "op", T0, koc()) == PENDING
    await change(db, friends[0], status="joined")  # back
    assert await settle(db, credit=rule) == {CREDITED: 1}  # the burst rule cleared for good


async def test_only_a_flagged_referral_takes_an_operator_s_decision(db: Database) -> None:
    rec = await recommender(db)
    await touch(db, rec, await member(db))
    async with db.unit_of_work() as session:
        pending = await session.scalar(select(Referral))
        assert pending is not None
        assert await referrals.decide_flagged(session, pending, True, "op", T0, koc()) \
            == PENDING
    assert await statuses(db) == [(PENDING, None)]
    assert await rows_of(db, ReferralCredit) == []
