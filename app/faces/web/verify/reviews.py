"""/api/reviews: the operators' review queue (the console comes later), API-key guarded.

A decision is taken only from `pending`: a second or stale decision gets 409 and changes
nothing, whoever sends it. So does approving a phone or platform user id linked to another
member (`held_by`): `/move` approves it by moving the link, the other member unlinked."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, select

from app.engine.db import utcnow
from app.engine.logs import get_logger
from app.faces.web.apikey import require_api_key
from app.members.models import Member
from app.routing.service import after_approval
from app.verify import checks, service
from app.verify.flows import ReviewNotes
from app.verify.models import APPROVED, REJECTED, Verification

log = get_logger("sopbot.verify")
MEDIA = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}

router = APIRouter(prefix="/api/reviews", dependencies=[Depends(require_api_key)])

Reviewer = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^\S(.*\S)?$")]
# Ids a BIGINT can hold: a larger one is a 422 here, not the driver's overflow error as a 500.
ReviewId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]


class Approve(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reviewer: Reviewer


class Reject(Approve):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class Review(BaseModel):
    id: int
    member_id: int
    external_userid: str
    phone: str
    identity_type: str
    region: str
    photos: list[str]  # URLs of the photos, under this API
    platform_user_id: str | None
    status: str
    reason: str | None
    reviewer: str | None
    submitted_at: datetime
    decided_at: datetime | None
    # Why it was not approved by rule (sop_flows/verify.yaml review_notes), and the members
    # its phone or platform user id was linked to when submitted.
    checks: list[str]
    held_by: list[int]


@router.get("")
async def list_reviews(
        request: Request,
        status: Literal["pending", "approved", "rejected", "all"] = "pending",
        after_id: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[Review]:
    """Oldest first; page with `after_id` = the last id seen."""
    query = _joined().where(Verification.id > after_id).order_by(Verification.id).limit(limit)
    if status != "all":
        query = query.where(Verification.status == status)
    notes = request.app.state.runtime.flows.verify.review_notes
    async with request.app.state.runtime.db.reader() as session:
        return [_review(row, external, notes)
                for row, external in (await session.execute(query))]


@router.get("/{review_id}")
async def get_review(review_id: ReviewId, request: Request) -> Review:
    async with request.app.state.runtime.db.reader() as session:
        found = (await session.execute(_joined().where(Verification.id == review_id))).first()
    if found is None:
        raise HTTPException(404, f"no review {review_id}")
    row, external = found
    return _review(row, external, request.app.state.runtime.flows.verify.review_notes)


@router.get("/{review_id}/photos/{n}")
async def get_photo(review_id: ReviewId, n: int, request: Request) -> FileResponse:
    """A review's n-th photo (the console serves it too); 404 unless it is a file on disk."""
    runtime = request.app.state.runtime
    async with runtime.db.reader() as session:
        row = await session.get(Verification, review_id)
    if row is None or not 0 <= n < len(row.photos):
        raise HTTPException(404, "no such photo")
    name = row.photos[n]
    return FileResponse(_photo_path(runtime.settings.photo_dir, name),
                        media_type=MEDIA.get(name.rpartition(".")[2], "application/octet-stream"))


def _photo_path(photo_dir: Path, name: str) -> Path:
    """The file `name` is under photo_dir. The names come from the database, which the upload
    fills with names of its own making; still, one naming `../x`, an absolute path or a link
    out of the directory never serves a file outside it."""
    root = photo_dir.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise HTTPException(404, "no such photo")
    return path


@router.post("/{review_id}/approve")
async def approve(review_id: ReviewId, body: Approve, request: Request) -> Review:
    return await _decide(request, review_id, APPROVED, body.reviewer, None)


@router.post("/{review_id}/move")
async def move(review_id: ReviewId, body: Approve, request: Request) -> Review:
    """Approve, moving the phone and platform user id from the members that hold them."""
    return await _decide(request, review_id, APPROVED, body.reviewer, None, move=True)


@router.post("/{review_id}/reject")
async def reject(review_id: ReviewId, body: Reject, request: Request) -> Review:
    return await _decide(request, review_id, REJECTED, body.reviewer, body.reason)


async def _decide(request: Request, review_id: int, status: str, reviewer: str,
                  reason: str | None, move: bool = False) -> Review:
    try:
        runtime = request.app.state.runtime
        async with runtime.db.unit_of_work() as session:
            await service.decide(session, review_id, status, reviewer, reason, utcnow(),
                                 after_approval(runtime.flows, runtime.settings), move)
    except service.ReviewNotFound:
        raise HTTPException(404, f"no review {review_id}") from None
    except service.AlreadyDecided as exc:
        raise HTTPException(409, f"review {review_id} is already {exc.status} "
                                 f"by {exc.reviewer}") from None
    except service.LinkHeld as exc:
        raise HTTPException(409, f"review {review_id}: phone or platform user id {exc}; "
                                 f"move the link (POST .../{review_id}/move) or reject") from None
    log.info("review_decided", verification_id=review_id, status=status, reviewer=reviewer)
    return await get_review(review_id, request)


def _joined() -> Select[Verification, str]:
    return select(Verification, Member.external_userid).join(
        Member, Member.id == Verification.member_id)


def _review(row: Verification, external_userid: str, notes: ReviewNotes) -> Review:
    return Review(id=row.id, member_id=row.member_id, external_userid=external_userid,
                  phone=row.phone, identity_type=row.identity_type, region=row.region,
                  photos=[f"/api/reviews/{row.id}/photos/{n}" for n in range(len(row.photos))],
                  platform_user_id=row.platform_user_id, status=row.status, reason=row.reason,
                  reviewer=row.reviewer, submitted_at=row.submitted_at,
                  decided_at=row.decided_at,
                  checks=[checks.describe(c, notes) for c in row.checks or ()],
                  held_by=checks.held_by(row.checks))
