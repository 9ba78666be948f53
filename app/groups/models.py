"""Customer groups as sopbot knows them: each group with its segment and member count, who is in
it, and each segment's pool (the 加入群聊 code new members scan and the groups behind it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.engine.db import Base, UTCDateTime, id_column, utcnow

LIVE, DISMISSED = "live", "dismissed"


class CustomerGroup(Base):
    __tablename__ = "customer_group"

    id: Mapped[int] = id_column()
    chat_id: Mapped[str] = mapped_column(String(64), unique=True)
    # From the name: a group whose name starts with a segment's room_name belongs to it.
    segment: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    owner: Mapped[str] = mapped_column(String(64), default="")
    notice: Mapped[str | None] = mapped_column(Text, default=None)  # the group announcement
    # Everyone in it, staff included: WeCom's caps (200 by QR, 500) count them all.
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    # CurMemVer of the last change applied; an event whose LastMemVer differs means one was
    # missed, and the group is read again (groupchat/get). None: not known yet.
    member_version: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[str] = mapped_column(String(16), default=LIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When it reached its segment's ideal size and left the pool for good.
    filled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Already full when sopbot first read it: no onboarding campaign for it.
    filled_on_arrival: Mapped[bool] = mapped_column(Boolean, default=False)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class GroupMember(Base):
    """One person in one group; left_at is set when they leave (the row stays for churn)."""

    __tablename__ = "group_member"
    __table_args__ = (UniqueConstraint("chat_id", "userid", name="uq_group_member_chat_user"),
                      Index("ix_group_member_userid", "userid"),
                      Index("ix_group_member_joined_at", "joined_at"))

    id: Mapped[int] = id_column()
    chat_id: Mapped[str] = mapped_column(String(64))
    userid: Mapped[str] = mapped_column(String(64))  # staff userid or external_userid
    type: Mapped[int] = mapped_column(Integer, default=2)  # 1 staff, 2 customer
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # As in the callback: 0 invited by a member, 3 scanned the group QR code.
    join_scene: Mapped[int | None] = mapped_column(Integer, default=None)
    state: Mapped[str | None] = mapped_column(String(32), default=None)  # the join way's state
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    quit_scene: Mapped[int | None] = mapped_column(Integer, default=None)
    # Their group nickname (or WeCom name) as groupchat/get last gave it.
    nickname: Mapped[str | None] = mapped_column(String(64), default=None)


class GroupPool(Base):
    """A segment's 加入群聊 code and the groups sopbot last asked WeCom to put behind it."""

    __tablename__ = "group_pool"

    id: Mapped[int] = id_column()
    segment: Mapped[str] = mapped_column(String(64), unique=True)
    config_id: Mapped[str] = mapped_column(String(64))
    qr_code: Mapped[str] = mapped_column(Text)
    chat_ids: Mapped[str] = mapped_column(Text)  # JSON list, ≤5
    room_name: Mapped[str] = mapped_column(String(64))  # as last sent (room_base_name)
    # Bumped with every change of chat_ids: the outbox key of the update that carries it.
    version: Mapped[int] = mapped_column(Integer, default=1)
    # An update failed: WeCom may not hold chat_ids, so the next change sends them anyway.
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WelcomeTemplate(Base):
    """The group welcome template made for a segment (`sopbot templates sync`)."""

    __tablename__ = "group_welcome_template"

    id: Mapped[int] = id_column()
    segment: Mapped[str] = mapped_column(String(64), unique=True)
    template_id: Mapped[str] = mapped_column(String(128))
    # What was sent, so only a changed declaration is edited.
    fingerprint: Mapped[str] = mapped_column(String(64))
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GroupMigration(Base):
    """A zombie group's migration plan: whom to invite where; made once per group."""

    __tablename__ = "group_migration"

    id: Mapped[int] = id_column()
    chat_id: Mapped[str] = mapped_column(String(64), unique=True)
    target_chat_id: Mapped[str] = mapped_column(String(64))
    members: Mapped[str] = mapped_column(Text)  # JSON list of the invited external_userids
    score: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
