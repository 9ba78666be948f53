"""verification: one row per form submission, the review queue and its decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.engine.db import Base, UTCDateTime, utcnow

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
STATUSES = (PENDING, APPROVED, REJECTED)

AUTO_REVIEWER = "auto"  # decisions made by sop_flows/verify.yaml rules, not a person


class Verification(Base):
    __tablename__ = "verification"
    # The queue is read by status, oldest first.
    __table_args__ = (Index("ix_verification_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id", ondelete="CASCADE"),
                                           index=True)
    phone: Mapped[str] = mapped_column(String(20))  # normalised; masked in every log line
    identity_type: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(32))
    # File names under SOPBOT_PHOTO_DIR (random, never the member's own file names).
    photos: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The directory entry the phone matched when submitted; None: not a platform user.
    platform_user_id: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    reviewer: Mapped[str | None] = mapped_column(String(64), default=None)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Why a submission was not approved by rule although it could have been (app/verify/
    # checks.py): a phone linked to another member, a photo too small, … None before 0018.
    checks: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=list)


class VerificationPhoto(Base):
    """A submitted photo's content hash and size, so the same image sent for another member is
    found by an index, not by reading every file."""

    __tablename__ = "verification_photo"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    verification_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("verification.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 0-based, as in verification.photos
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    width: Mapped[int | None] = mapped_column(Integer, default=None)  # None: not decoded
    height: Mapped[int | None] = mapped_column(Integer, default=None)
