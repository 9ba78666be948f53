"""What keeps a submission from being approved by rule, found when it is stored: the phone or
platform user id linked to another member, and photos that fail sop_flows/verify.yaml's
photo_checks (undecodable, too many pixels, too small, the same image as another member's).
A check that fails never rejects anyone: the submission waits for a reviewer, who reads why.

Each check is stored as a small dict on verification.checks (`check` names its review_notes
text, the other keys are its placeholders), so the reviewer reads what the rule saw then."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.members import links
from app.members.models import Member
from app.verify.flows import PhotoChecks, ReviewNotes
from app.verify.models import Verification, VerificationPhoto
from app.verify.photos import TOO_MANY_PIXELS, Inspected

Check = dict[str, Any]


async def run(session: AsyncSession, row: Verification, member: Member,
              photos: list[Inspected], limits: PhotoChecks) -> list[Check]:
    """The checks `row` fails (after its photos are stored: a photo is not its own twin)."""
    return [*await link_checks(session, member),
            *photo_checks(photos, limits),
            *await reused(session, row, photos)]


async def link_checks(session: AsyncSession, member: Member) -> list[Check]:
    found: list[Check] = []
    for other in await links.holders(session, member.phone, member.platform_user_id, member.id):
        if other.phone == member.phone:
            found.append({"check": "phone_held", "member_id": other.id})
        if member.platform_user_id and other.platform_user_id == member.platform_user_id:
            found.append({"check": "platform_id_held", "member_id": other.id,
                          "platform_user_id": other.platform_user_id})
    return found


def photo_checks(photos: list[Inspected], limits: PhotoChecks) -> list[Check]:
    found: list[Check] = []
    for n, photo in enumerate(photos, 1):
        if photo.problem is not None:
            kind = "photo_too_many_pixels" if photo.problem == TOO_MANY_PIXELS \
                else "photo_unreadable"
            found.append({"check": kind, "photo": n})
        elif (photo.width or 0) < limits.min_width or (photo.height or 0) < limits.min_height:
            found.append({"check": "photo_small", "photo": n, "width": photo.width,
                          "height": photo.height, "min_width": limits.min_width,
                          "min_height": limits.min_height})
    return found


async def reused(session: AsyncSession, row: Verification,
                 photos: list[Inspected]) -> list[Check]:
    """Photos whose bytes another member submitted before (the first such submission named)."""
    hashes = {p.sha256 for p in photos if p.sha256}
    if not hashes:
        return []
    earlier = await session.execute(
        select(VerificationPhoto.sha256, Verification.member_id, Verification.id)
        .join(Verification, Verification.id == VerificationPhoto.verification_id)
        .where(VerificationPhoto.sha256.in_(hashes), Verification.member_id != row.member_id)
        .order_by(Verification.id))
    first: dict[str, tuple[int, int]] = {}
    for sha256, member_id, verification_id in earlier:
        first.setdefault(sha256, (member_id, verification_id))
    return [{"check": "photo_reused", "photo": n, "member_id": first[p.sha256][0],
             "verification_id": first[p.sha256][1]}
            for n, p in enumerate(photos, 1) if p.sha256 in first]


def store_photos(session: AsyncSession, row: Verification, photos: list[Inspected]) -> None:
    session.add_all(VerificationPhoto(verification_id=row.id, position=n, sha256=p.sha256,
                                      width=p.width, height=p.height)
                    for n, p in enumerate(photos))


def describe(check: Check, notes: ReviewNotes) -> str:
    """The reviewer's line for a stored check (one this version does not know: its name)."""
    template = getattr(notes, str(check.get("check")), None)
    if not isinstance(template, str):
        return str(check.get("check"))
    try:
        return template.format(**check)
    except (KeyError, IndexError, ValueError):  # a check stored by another version
        return template


def held_by(checks: list[Check] | None) -> list[int]:
    """The members a phone or platform user id check names, as stored."""
    return sorted({int(c["member_id"]) for c in checks or ()
                   if c.get("check") in ("phone_held", "platform_id_held")})
