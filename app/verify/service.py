"""Submissions and decisions: the verification row, the member record and the funnel change
together in the caller's unit of work (flush, never commit).

Approving links the member's phone and platform user id to them (app/members/links.py): a
submission claiming what another member holds, or whose photos fail a check, is never approved
by rule (app/verify/checks.py); a reviewer approves it only by moving the link (`move`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory.service import match_phone
from app.engine.logs import mask_phones
from app.funnel import steps
from app.funnel.service import record
from app.members import links
from app.members import models as member_status
from app.members import service as members
from app.members.links import LinkHeld
from app.members.models import Member
from app.verify import checks
from app.verify.flows import CONSUMER, VerifyFlows
from app.verify.models import APPROVED, AUTO_REVIEWER, PENDING, REJECTED, Verification
from app.verify.photos import Inspected

__all__ = ["LinkHeld"]  # raised by decide(); callers catch it from here

# What follows an approval in the same unit of work (routing: app/routing/service.py).
OnApproved = Callable[[AsyncSession, Member, datetime], Awaitable[object]]


@dataclass(frozen=True)
class Submission:
    phone: str  # normalised, 11 digits
    identity_type: str
    region: str


class ReviewNotFound(LookupError):
    pass


class AlreadyDecided(RuntimeError):
    def __init__(self, row: Verification) -> None:
        # Copied now: the rollback that follows expires the row.
        self.status, self.reviewer = row.status, row.reviewer
        super().__init__(f"verification {row.id} is already {row.status} by {row.reviewer}")


async def locked_member(session: AsyncSession, external_userid: str) -> Member | None:
    """The member, locked until the unit of work ends (PostgreSQL: FOR UPDATE; SQLite's
    write transaction is exclusive already), so two submissions cannot both see none."""
    return await session.scalar(select(Member).where(Member.external_userid == external_userid)
                                .with_for_update())


async def latest(session: AsyncSession, member_id: int) -> Verification | None:
    return await session.scalar(select(Verification).where(Verification.member_id == member_id)
                                .order_by(Verification.id.desc()).limit(1))


async def may_resubmit(session: AsyncSession, row: Verification, flows: VerifyFlows) -> bool:
    """A reviewer's rejection (not a consumer's, which is a rule) leaves room to correct."""
    if row.status != REJECTED or row.identity_type == CONSUMER:
        return False
    count = await session.scalar(select(func.count()).where(
        Verification.member_id == row.member_id))
    return (count or 0) < flows.max_submissions


async def form_opened(session: AsyncSession, member: Member, now: datetime) -> None:
    await record(session, steps.VERIFY_OPENED, f"{steps.VERIFY_OPENED}:{member.id}", now,
                 member=member)


async def submit(session: AsyncSession, member: Member, submission: Submission,
                 photos: list[Inspected], flows: VerifyFlows, now: datetime,
                 on_approved: OnApproved) -> tuple[Verification, bool]:
    """Store the submission and queue it for review; (row, True), or the member's existing
    submission and False: a second one is answered with the first's status, unless a reviewer
    rejected the first and the member may correct it."""
    existing = await latest(session, member.id)
    if existing is not None and not await may_resubmit(session, existing, flows):
        return existing, False
    row = Verification(member_id=member.id, phone=submission.phone,
                       photos=[p.name for p in photos],
                       identity_type=submission.identity_type, region=submission.region,
                       platform_user_id=await match_phone(session, submission.phone),
                       status=PENDING, submitted_at=now)
    session.add(row)
    await session.flush()
    await members.change(session, member, now, "verify", status=member_status.SUBMITTED,
                         phone=row.phone, identity_type=row.identity_type, region=row.region,
                         platform_user_id=row.platform_user_id)
    checks.store_photos(session, row, photos)
    row.checks = await checks.run(session, row, member, photos, flows.photo_checks)
    await record(session, steps.SUBMITTED, f"{steps.SUBMITTED}:{member.id}", now, member=member)
    await _auto_decide(session, row, member, flows, now, on_approved)
    return row, True


async def _auto_decide(session: AsyncSession, row: Verification, member: Member,
                       flows: VerifyFlows, now: datetime, on_approved: OnApproved) -> None:
    """Consumers are turned away at once; a directory match that passes every check may be
    approved by rule; anything else waits for a reviewer."""
    if row.identity_type == CONSUMER:
        await _decide(session, row, member, REJECTED, AUTO_REVIEWER, flows.consumer_reason, now,
                      on_approved)
    elif (row.platform_user_id is not None and not row.checks
          and row.identity_type in flows.auto_approve.directory_match):
        try:
            await _decide(session, row, member, APPROVED, AUTO_REVIEWER, None, now, on_approved)
        except LinkHeld:  # linked by a concurrent submission since the checks ran
            row.checks = await checks.link_checks(session, member)


async def decide(session: AsyncSession, verification_id: int, status: str, reviewer: str,
                 reason: str | None, now: datetime, on_approved: OnApproved,
                 move: bool = False) -> Verification:
    """An operator's decision; ReviewNotFound, or AlreadyDecided so a stale one never wins;
    LinkHeld for an approval of what another member holds, unless `move` says to move it."""
    row = await session.scalar(select(Verification).where(Verification.id == verification_id)
                               .with_for_update())
    if row is None:
        raise ReviewNotFound(verification_id)
    if row.status != PENDING:
        raise AlreadyDecided(row)
    member = await locked_member_by_id(session, row.member_id)
    await _decide(session, row, member, status, reviewer, reason, now, on_approved, move)
    return row


async def locked_member_by_id(session: AsyncSession, member_id: int) -> Member:
    member = await session.scalar(select(Member).where(Member.id == member_id).with_for_update())
    assert member is not None, "verification.member_id has a foreign key"
    return member


async def _decide(session: AsyncSession, row: Verification, member: Member, status: str,
                  reviewer: str, reason: str | None, now: datetime,
                  on_approved: OnApproved, move: bool = False) -> None:
    approved = status == APPROVED
    if approved:  # first: LinkHeld leaves the row and the member as they were
        await links.link(session, member, now, f"review:{reviewer}", move)
    row.status, row.reviewer, row.reason, row.decided_at = status, reviewer, reason, now
    await session.flush()
    await members.change(session, member, now, f"review:{reviewer}",
                         status=member_status.APPROVED if approved else member_status.REJECTED)
    step = steps.APPROVED if approved else steps.REJECTED
    await record(session, step, f"{step}:{member.id}", now, member=member, detail=reason)
    if approved:
        await on_approved(session, member, now)


@dataclass(frozen=True)
class PendingReview:
    id: int
    phone: str  # masked
    identity_type: str
    region: str
    checks: tuple[dict[str, object], ...] = ()  # why it waits (app/verify/checks.py)


async def pending_reviews(session: AsyncSession,
                          limit: int = 10) -> tuple[int, list[PendingReview]]:
    count = await session.scalar(select(func.count()).where(Verification.status == PENDING))
    rows = await session.scalars(select(Verification).where(Verification.status == PENDING)
                                 .order_by(Verification.id).limit(limit))
    return count or 0, [PendingReview(r.id, mask_phones(r.phone), r.identity_type, r.region,
                                      tuple(r.checks or ())) for r in rows]
