"""What the review pages show: the queue (pending, oldest first) or the recent decisions, one
review in full, each with its member, labels from sop_flows/, the directory match, why it was
not approved by rule (app/verify/checks.py) and the members its phone or platform user id is
linked to now (a pending one is approved only by moving that link)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory.models import PlatformUser
from app.faces.console import labels, times
from app.flows import Flows
from app.members import links
from app.members.models import Member
from app.verify import checks
from app.verify.models import APPROVED, PENDING, REJECTED, Verification

# Tabs of the review page: the queue, and what was decided lately.
FILTERS = {PENDING: "待审核", APPROVED: "最近通过", REJECTED: "最近拒绝"}
# The queue shows the oldest this many; a reviewer works from the top, and the count says
# how many wait behind them.
PAGE_SIZE = 50


@dataclass(frozen=True)
class DirectoryMatch:
    platform_user_id: str
    name: str | None
    # False: the phone was not in the directory when submitted, it is now (imported since).
    at_submission: bool


@dataclass(frozen=True)
class Holder:
    """A member the submission's phone or platform user id is linked to."""

    member_id: int
    external_userid: str
    status_label: str


@dataclass(frozen=True)
class ReviewItem:
    id: int
    member_id: int
    external_userid: str
    phone: str  # the whole number: only the review detail shows it
    phone_masked: str
    identity: str
    region: str
    channel: str
    submitted: str
    photos: list[str]
    match: DirectoryMatch | None
    status: str
    status_label: str
    reviewer: str
    decided: str
    reason: str | None
    notes: list[str]  # why it waits for a person (empty: no check failed)
    holders: list[Holder]  # pending only: approving it moves the link from these

    @property
    def pending(self) -> bool:
        return self.status == PENDING


async def queue(session: AsyncSession, status: str, flows: Flows,
                me: str) -> tuple[int, list[ReviewItem]]:
    """(how many have `status`, the first PAGE_SIZE): pending ones oldest first, decided ones
    most recently decided first."""
    count = await session.scalar(select(func.count()).select_from(Verification)
                                 .where(Verification.status == status))
    order = ((Verification.id,) if status == PENDING
             else (Verification.decided_at.desc(), Verification.id.desc()))
    rows = (await session.execute(_joined().where(Verification.status == status)
                                  .order_by(*order).limit(PAGE_SIZE))).all()
    return count or 0, await _items(session, rows, flows, me)


async def one(session: AsyncSession, review_id: int, flows: Flows,
              me: str) -> ReviewItem | None:
    row = (await session.execute(_joined().where(Verification.id == review_id))).first()
    return (await _items(session, [row], flows, me))[0] if row else None


def _joined() -> Any:
    return select(Verification, Member).join(Member, Member.id == Verification.member_id)


async def _items(session: AsyncSession, rows: Any, flows: Flows, me: str) -> list[ReviewItem]:
    directory = await _directory(session, [v for v, _ in rows])
    return [_item(v, m, _match(v, directory), flows, me,
                  await _holders(session, v, m) if v.status == PENDING else [])
            for v, m in rows]


async def _holders(session: AsyncSession, row: Verification, member: Member) -> list[Holder]:
    """Who holds the phone or platform user id now (the stored checks say who did then).
    One query per pending review: a page shows at most PAGE_SIZE."""
    found = await links.holders(session, row.phone, row.platform_user_id, member.id)
    return [Holder(m.id, m.external_userid, labels.member_status(m.status)) for m in found]


async def _directory(session: AsyncSession,
                     rows: list[Verification]) -> dict[str, PlatformUser]:
    """The directory entries of these reviews, by platform user id and by phone (one query)."""
    if not rows:
        return {}
    ids = {v.platform_user_id for v in rows if v.platform_user_id}
    phones = {v.phone for v in rows if not v.platform_user_id}
    found = await session.scalars(select(PlatformUser).where(or_(
        PlatformUser.platform_user_id.in_(ids), PlatformUser.phone.in_(phones))))
    by_key: dict[str, PlatformUser] = {}
    for user in found:
        by_key[f"id:{user.platform_user_id}"] = user
        by_key[f"phone:{user.phone}"] = user
    return by_key


def _match(row: Verification, directory: dict[str, PlatformUser]) -> DirectoryMatch | None:
    if row.platform_user_id:
        user = directory.get(f"id:{row.platform_user_id}")
        # The entry may have been removed since; the id matched at submission still counts.
        return DirectoryMatch(row.platform_user_id, user.name if user else None, True)
    user = directory.get(f"phone:{row.phone}")
    return DirectoryMatch(user.platform_user_id, user.name, False) if user else None


def _item(row: Verification, member: Member, match: DirectoryMatch | None, flows: Flows,
          me: str, holders: list[Holder]) -> ReviewItem:
    return ReviewItem(
        id=row.id, member_id=member.id, external_userid=member.external_userid,
        phone=row.phone, phone_masked=labels.phone_masked(row.phone),
        identity=labels.identity(flows, row.identity_type), region=row.region,
        channel=labels.channel(flows, member.channel),
        submitted=times.local(row.submitted_at),
        photos=[photo_url(row.id, n) for n in range(len(row.photos))], match=match,
        status=row.status, status_label=labels.REVIEW_STATUS.get(row.status, row.status),
        reviewer=labels.reviewer(row.reviewer, me), decided=times.local(row.decided_at),
        reason=row.reason, holders=holders,
        notes=[checks.describe(c, flows.verify.review_notes) for c in row.checks or ()])


def photo_url(review_id: int, n: int) -> str:
    return f"/console/reviews/{review_id}/photos/{n}"
