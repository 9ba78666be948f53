"""The member record: one row per customer (external_userid) and the history of every change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.engine.db import Base, UTCDateTime, id_column, utcnow

# Where a member stands; the funnel steps (app/funnel/steps.py) say how they got there.
ADDED = "added"            # friend added, welcome queued or skipped
SUBMITTED = "submitted"    # verification form sent, waiting for review
APPROVED = "approved"      # a business, approved
REJECTED = "rejected"      # not approved (a consumer, or an operator said no)
ROUTED = "routed"          # given a segment and a group to join
JOINED = "joined"          # in a customer group
LEFT = "left"              # deleted the staff member, or left every group

IDENTITY_TYPES = ("physical_shop", "wechat_reseller", "online_shop", "consumer")

# The one-to-one record (PLAYBOOK step 6): a verified member's phone and platform user id are
# linked to them, and to no other member. The unique indexes below hold it in the database.
LINKED = "linked"
# Linked before the indexes existed, sharing a phone or platform user id with another linked
# member: migration 0018 kept both as they were (unlinking nobody silently) and left them out of
# the indexes; an operator resolves it on the member page.
DUPLICATE = "duplicate"
LINK_MOVED = "link_moved"  # flag of a member whose link a reviewer moved to another account
UNLINKED = "unlinked"  # flag of a member an operator unlinked by hand (member page)
_LINKED_ONLY = text(f"link_state = '{LINKED}'")


class Member(Base):
    __tablename__ = "member"
    __table_args__ = (
        Index("uq_member_linked_phone", "phone", unique=True,
              sqlite_where=_LINKED_ONLY, postgresql_where=_LINKED_ONLY),
        Index("uq_member_linked_platform_user_id", "platform_user_id", unique=True,
              sqlite_where=_LINKED_ONLY, postgresql_where=_LINKED_ONLY),
    )

    id: Mapped[int] = id_column()
    external_userid: Mapped[str] = mapped_column(String(64), unique=True)
    staff_userid: Mapped[str] = mapped_column(String(64))  # the staff member they added
    # Stored as given (the back office needs it); masked in every log line.
    phone: Mapped[str | None] = mapped_column(String(20), default=None, index=True)
    platform_user_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    identity_type: Mapped[str | None] = mapped_column(String(32), default=None)
    channel: Mapped[str] = mapped_column(String(32))
    slot: Mapped[str | None] = mapped_column(String(32), default=None)
    region: Mapped[str | None] = mapped_column(String(32), default=None)
    segment: Mapped[str | None] = mapped_column(String(64), default=None)
    group_chat_id: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[str] = mapped_column(String(16), default=ADDED)
    # Something an operator should look at, e.g. joined a group of another segment.
    flag: Mapped[str | None] = mapped_column(String(32), default=None)
    # None: nothing linked (not verified, or unlinked since); LINKED or DUPLICATE.
    link_state: Mapped[str | None] = mapped_column(String(16), default=None)
    # The 联系我 state the add came with, as received (attribution audits).
    state: Mapped[str] = mapped_column(String(32), default="")
    welcome_code: Mapped[str | None] = mapped_column(String(128), default=None, unique=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MemberHistory(Base):
    """One row per changed field: who or what changed it, when, from what to what."""

    __tablename__ = "member_history"
    __table_args__ = (Index("ix_member_history_member_id", "member_id", "id"),)

    id: Mapped[int] = id_column()
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    field: Mapped[str] = mapped_column(String(32))
    old: Mapped[str | None] = mapped_column(Text, default=None)
    new: Mapped[str | None] = mapped_column(Text, default=None)
    source: Mapped[str] = mapped_column(String(64))  # e.g. "callback", "review:operator1"
