"""Referral attribution that cannot be gamed.

A friend add through a recommender's code is a referral (`touch`, in the friend add's unit of
work). Only a person's first touch can earn credit; a person who was a member already, or the
recommender themself, earns nothing. `settle` (a job) decides each pending referral once the
referee's path is clear: credited when they passed verification as a business, hold a phone
and platform user id no other member ever had, are not the recommender under another account,
and joined their group; rejected when any of that fails for good; flagged for an operator when
the recommender's referrals come in a burst or from one phone range. The credit row's unique
indexes make a second credit of the same person impossible, whoever asks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.config import SHANGHAI
from app.engine.db import insert_for
from app.engine.logs import get_logger
from app.koc import rewards
from app.koc.flows import KocFlows
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
from app.members.models import JOINED, LINKED, Member
from app.members.models import REJECTED as MEMBER_REJECTED

log = get_logger("sopbot.koc")

# Referral.reason
SELF, ALREADY_MEMBER, FIRST_ELSEWHERE = "self", "already_member", "first_touch_elsewhere"
CONSUMER, NOT_APPROVED, DUPLICATE_PHONE, DUPLICATE_ID = (
    "consumer", "not_approved", "duplicate_phone", "duplicate_platform_id")
ALREADY_CREDITED, BURST, PHONE_RANGE, BY_OPERATOR = (
    "already_credited", "burst", "phone_range", "operator")
# Every reason a referral is rejected or flagged for (texts name each: commands.yaml).
REASONS = (SELF, ALREADY_MEMBER, FIRST_ELSEWHERE, CONSUMER, NOT_APPROVED, DUPLICATE_PHONE,
           DUPLICATE_ID, ALREADY_CREDITED, BURST, PHONE_RANGE, BY_OPERATOR)
SETTLE_BATCH = 500


async def touch(session: AsyncSession, member: Member, state: str, now: datetime,
                koc: KocFlows, *, new_member: bool) -> Referral | None:
    """Record a friend add through a recommender's code; None when the state names none."""
    short_id = koc.short_id_of(state)
    rec = await by_short_id(session, short_id) if short_id else None
    if rec is None:
        if short_id:
            log.warning("referral_code_unknown", state=state[:32])
        return None
    first = await session.scalar(select(Referral.recommender_id).where(
        Referral.referee_member_id == member.id).order_by(Referral.id).limit(1))
    status, reason = PENDING, None
    if rec.member_id == member.id:
        status, reason = REJECTED, SELF
    elif first is not None and first != rec.id:
        status, reason = NOT_FIRST, FIRST_ELSEWHERE
    elif not new_member and first is None:
        status, reason = REJECTED, ALREADY_MEMBER
    await session.execute(insert_for(session, Referral).values(
        recommender_id=rec.id, referee_member_id=member.id, added_at=now, status=status,
        reason=reason).on_conflict_do_nothing(
            index_elements=["referee_member_id", "recommender_id"]))
    if status == PENDING:  # a self-scan or a known face does not keep a code in use
        rec.last_referral_at = now
    log.info("referral_recorded", recommender_id=rec.id, member_id=member.id, status=status,
             reason=reason)
    return await session.scalar(select(Referral).where(
        Referral.referee_member_id == member.id, Referral.recommender_id == rec.id))


async def settle(session: AsyncSession, now: datetime, koc: KocFlows) -> dict[str, int]:
    """Decide the pending referrals whose outcome is clear; counts by new status."""
    # Only referrals whose referee has got somewhere (in a group, or turned down): the ones
    # still on their way would otherwise fill every batch and hide the decidable ones.
    pending = list(await session.scalars(
        select(Referral).join(Member, Member.id == Referral.referee_member_id)
        .where(Referral.status == PENDING,
               or_(Member.status.in_((JOINED, MEMBER_REJECTED)),
                   Member.identity_type == "consumer"))
        .order_by(Referral.id).limit(SETTLE_BATCH).with_for_update(of=Referral)))
    counts: dict[str, int] = {}
    for referral in pending:
        # One an operator cleared of the velocity rules is not flagged again.
        status = await _decide(session, referral, now, koc,
                               velocity=referral.decided_by is None)
        if status != PENDING:
            counts[status] = counts.get(status, 0) + 1
    return counts


async def decide_flagged(session: AsyncSession, referral: Referral, credit: bool,
                         operator: str, now: datetime, koc: KocFlows) -> str:
    """An operator's decision on a flagged referral: credited (every other rule still holds)
    or rejected. The referral's new status; one that is not flagged is left as it is."""
    if referral.status != FLAGGED:
        return referral.status
    referral.decided_by, referral.decided_at = operator[:80], now
    if not credit:
        return _close(referral, REJECTED, BY_OPERATOR)
    status = await _decide(session, referral, now, koc, velocity=False)
    if status == FLAGGED:  # cleared, but the friend is not in their group (any more): wait
        status = _close(referral, PENDING, None)
    return status


async def _decide(session: AsyncSession, referral: Referral, now: datetime, koc: KocFlows,
                  *, velocity: bool) -> str:
    referee = await session.get(Member, referral.referee_member_id)
    rec = await session.get(Recommender, referral.recommender_id)
    assert referee is not None and rec is not None
    referrer = await session.get(Member, rec.member_id)
    assert referrer is not None
    if (reason := _failed_for_good(referee)) is not None:
        return _close(referral, REJECTED, reason)
    if referee.link_state != LINKED or referee.status != JOINED:
        return referral.status  # not verified, or not in their group yet: wait
    if (reason := _same_person(referee, referrer)) is not None:
        return _close(referral, REJECTED, reason)
    if (reason := await _seen_before(session, referee)) is not None:
        return _close(referral, REJECTED, reason)
    if velocity and (reason := await _suspicious(session, referral, referee, koc)) is not None:
        log.warning("referral_flagged", referral_id=referral.id, recommender_id=rec.id,
                    reason=reason)
        return _close(referral, FLAGGED, reason)
    return await _credit(session, referral, rec, referrer, referee, now, koc)


def _close(referral: Referral, status: str, reason: str | None) -> str:
    referral.status, referral.reason = status, reason
    return status


def _failed_for_good(referee: Member) -> str | None:
    if referee.identity_type == "consumer":
        return CONSUMER
    if referee.status == MEMBER_REJECTED:
        return NOT_APPROVED
    return None


def _same_person(referee: Member, referrer: Member) -> str | None:
    if referee.id == referrer.id or (referee.phone and referee.phone == referrer.phone) or (
            referee.platform_user_id and referee.platform_user_id == referrer.platform_user_id):
        return SELF
    return None


async def _seen_before(session: AsyncSession, referee: Member) -> str | None:
    """A phone or platform user id another member record has (or had: unlinked members keep
    them) or that a credit already used: the same person under a second account."""
    for column, value, reason in ((Member.phone, referee.phone, DUPLICATE_PHONE),
                                  (Member.platform_user_id, referee.platform_user_id,
                                   DUPLICATE_ID)):
        if value and await session.scalar(select(Member.id).where(
                column == value, Member.id != referee.id).limit(1)) is not None:
            return reason
    keys = [ReferralCredit.referee_member_id == referee.id]
    keys += [ReferralCredit.phone == referee.phone] if referee.phone else []
    keys += ([ReferralCredit.platform_user_id == referee.platform_user_id]
             if referee.platform_user_id else [])
    used = await session.scalar(select(ReferralCredit.id).where(or_(*keys)).limit(1))
    return ALREADY_CREDITED if used is not None else None


async def _suspicious(session: AsyncSession, referral: Referral, referee: Member,
                      koc: KocFlows) -> str | None:
    """Velocity rules: many new friends of one recommender at once, or from one phone range."""
    burst = koc.credit.burst
    window = timedelta(minutes=burst.minutes)
    near = await session.scalar(select(func.count()).select_from(Referral).where(
        Referral.recommender_id == referral.recommender_id, Referral.status != NOT_FIRST,
        Referral.added_at > referral.added_at - window,
        Referral.added_at < referral.added_at + window)) or 0
    if near > burst.max:
        return BURST
    span = koc.credit.phone_range
    if referee.phone and len(referee.phone) > span.digits:
        same = await session.scalar(select(func.count()).select_from(Referral).join(
            Member, Member.id == Referral.referee_member_id).where(
            Referral.recommender_id == referral.recommender_id, Referral.status != NOT_FIRST,
            Member.phone.like(referee.phone[:span.digits] + "%"))) or 0
        if same > span.max:
            return PHONE_RANGE
    return None


async def _credit(session: AsyncSession, referral: Referral, rec: Recommender,
                  referrer: Member, referee: Member, now: datetime, koc: KocFlows) -> str:
    try:
        async with session.begin_nested():
            session.add(ReferralCredit(
                referral_id=referral.id, recommender_id=rec.id, referee_member_id=referee.id,
                phone=referee.phone, platform_user_id=referee.platform_user_id,
                segment=referrer.segment, month=f"{now.astimezone(SHANGHAI):%Y-%m}", at=now))
    except IntegrityError:  # credited meanwhile (another replica): the indexes said no
        return _close(referral, REJECTED, ALREADY_CREDITED)
    _close(referral, CREDITED, None)
    log.info("referral_credited", referral_id=referral.id, recommender_id=rec.id,
             member_id=referee.id)
    await rewards.on_credit(session, rec, now, koc)
    return CREDITED


async def revoke(session: AsyncSession, credit: ReferralCredit, operator: str, reason: str,
                 now: datetime) -> bool:
    """An operator takes a credit back (the referee turned out fake); it is never re-earned.
    Rewards already earned stay in the ledger for the operator to decline."""
    if credit.revoked_at is not None:
        return False
    credit.revoked_at, credit.revoked_by, credit.revoke_reason = now, operator[:80], reason
    log.info("referral_credit_revoked", credit_id=credit.id, operator=operator)
    return True
