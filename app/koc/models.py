"""The referral programme as sopbot keeps it.

A recommender is a verified member with a personal 联系我 code (state `<channel>.<short id>`).
Every friend add through such a code is a referral; only the first touch of a person can earn
credit. A credit is written once and never deleted (revocation is a mark): its unique indexes
on the referee, their phone and their platform user id hold "one person credited to one
referrer, once, ever" in the database itself. Rewards are a ledger: earned → approved → issued
(or rejected), each step with who and when.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.engine.db import Base, UTCDateTime, id_column, utcnow

# Recommender.code: where their 联系我 code stands.
NO_CODE, CODE_REQUESTED, CODE_READY, CODE_REMOVED = "none", "requested", "ready", "removed"
# Referral.status
PENDING, CREDITED, REJECTED, FLAGGED, NOT_FIRST = (
    "pending", "credited", "rejected", "flagged", "not_first")
REFERRAL_STATUSES = (PENDING, CREDITED, REJECTED, FLAGGED, NOT_FIRST)
# Reward.status
EARNED, APPROVED, ISSUED, DECLINED = "earned", "approved", "issued", "declined"
REWARD_STATUSES = (EARNED, APPROVED, ISSUED, DECLINED)
TIER, RANK = "tier", "rank"  # Reward.kind
# KocMember.status
KOC, FORMER = "koc", "former"


class Recommender(Base):
    __tablename__ = "recommender"

    id: Mapped[int] = id_column()
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id", ondelete="CASCADE"),
                                           unique=True)
    short_id: Mapped[str] = mapped_column(String(16), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    source: Mapped[str] = mapped_column(String(80))  # "asked" or "nominated:<operator>"
    code: Mapped[str] = mapped_column(String(16), default=NO_CODE)
    config_id: Mapped[str | None] = mapped_column(String(64), default=None)
    qr_code: Mapped[str | None] = mapped_column(String(1024), default=None)
    code_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Where the code goes once WeCom made it: the kf account they asked on, else their staff.
    deliver_kfid: Mapped[str | None] = mapped_column(String(64), default=None)
    last_referral_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Referral(Base):
    """A friend add through a recommender's code: the first touch of a person may earn credit;
    later touches (another recommender's code) are kept as `not_first`."""

    __tablename__ = "referral"
    __table_args__ = (UniqueConstraint("referee_member_id", "recommender_id"),
                      Index("ix_referral_status", "status", "id"),
                      Index("ix_referral_recommender", "recommender_id", "added_at"))

    id: Mapped[int] = id_column()
    recommender_id: Mapped[int] = mapped_column(ForeignKey("recommender.id", ondelete="CASCADE"))
    referee_member_id: Mapped[int] = mapped_column(ForeignKey("member.id", ondelete="CASCADE"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    reason: Mapped[str | None] = mapped_column(String(64), default=None)
    decided_by: Mapped[str | None] = mapped_column(String(80), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class ReferralCredit(Base):
    """A credited referral. Never deleted; a revocation marks it. Each unique index is one way
    the same person could otherwise be credited twice."""

    __tablename__ = "referral_credit"
    __table_args__ = (Index("ix_referral_credit_recommender", "recommender_id", "month"),)

    id: Mapped[int] = id_column()
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id"), unique=True)
    recommender_id: Mapped[int] = mapped_column(ForeignKey("recommender.id"))
    referee_member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True, default=None)
    platform_user_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    segment: Mapped[str | None] = mapped_column(String(64), default=None)  # the recommender's
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM, Asia/Shanghai: monthly ranks
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(80), default=None)
    revoke_reason: Mapped[str | None] = mapped_column(Text, default=None)


class Reward(Base):
    __tablename__ = "koc_reward"
    __table_args__ = (Index("ix_koc_reward_status", "status", "id"),
                      Index("ix_koc_reward_recommender", "recommender_id"))

    id: Mapped[int] = id_column()
    key: Mapped[str] = mapped_column(String(96), unique=True)  # tier:<rec>:<tier> / rank:…
    recommender_id: Mapped[int] = mapped_column(ForeignKey("recommender.id"))
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(64))  # the tier's or rank's name in koc.yaml
    label: Mapped[str] = mapped_column(String(128))  # what is given, as koc.yaml says it
    period: Mapped[str | None] = mapped_column(String(16), default=None)  # rank: YYYY-MM
    status: Mapped[str] = mapped_column(String(16), default=EARNED)
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(80), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    issued_by: Mapped[str | None] = mapped_column(String(80), default=None)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    issue_ref: Mapped[str | None] = mapped_column(String(128), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)

    @property
    def segment(self) -> str | None:
        """A rank reward's segment (its key is rank:<month>:<segment>:<place>); None for a
        tier."""
        return self.key.split(":")[2] if self.kind == RANK else None


class KocMember(Base):
    """A member an operator promoted to KOC (corp tag `KOC`), and their demotion."""

    __tablename__ = "koc_member"

    id: Mapped[int] = id_column()
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id", ondelete="CASCADE"),
                                           unique=True)
    status: Mapped[str] = mapped_column(String(8), default=KOC)
    promoted_by: Mapped[str] = mapped_column(String(80))
    promoted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    demoted_by: Mapped[str | None] = mapped_column(String(80), default=None)
    demoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class KocAssignment(Base):
    """A 话题讨论 topic a KOC leads, or an invitation to speak at a 嘉宾分享会."""

    __tablename__ = "koc_assignment"
    __table_args__ = (Index("ix_koc_assignment_member", "member_id", "id"),)

    id: Mapped[int] = id_column()
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))  # topic | guest
    title: Mapped[str] = mapped_column(String(128))
    content_item_id: Mapped[int | None] = mapped_column(Integer, default=None)
    by: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
