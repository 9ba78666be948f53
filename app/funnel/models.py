"""funnel_event: one row per step a member (or an anonymous app user) took."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.engine.db import Base, UTCDateTime, utcnow


class FunnelEvent(Base):
    __tablename__ = "funnel_event"
    __table_args__ = (Index("ix_funnel_event_step_at", "step", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    step: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Idempotency: the app's event id for reported steps, "<step>:<member id>" and the like
    # for sopbot's own, so a retried handler never counts a step twice.
    event_key: Mapped[str] = mapped_column(String(128), unique=True)
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("member.id", ondelete="SET NULL"), default=None, index=True)
    # The app's user id for steps before the friend add (targeted ... landing).
    platform_user_id: Mapped[str | None] = mapped_column(String(64), default=None)
    channel: Mapped[str | None] = mapped_column(String(32), default=None)
    slot: Mapped[str | None] = mapped_column(String(32), default=None)
    segment: Mapped[str | None] = mapped_column(String(64), default=None)
    region: Mapped[str | None] = mapped_column(String(32), default=None)
    # A duration that belongs to the step (welcome_sent: callback → WeCom's answer, ms).
    latency_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    detail: Mapped[str | None] = mapped_column(Text, default=None)


class ContactCode(Base):
    """The 联系我 code of one (channel, slot), as `sopbot codes sync` made it."""

    __tablename__ = "contact_code"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    state: Mapped[str] = mapped_column(String(32), unique=True)  # "<channel>.<slot>"
    channel: Mapped[str] = mapped_column(String(32))
    slot: Mapped[str | None] = mapped_column(String(32), default=None)
    config_id: Mapped[str] = mapped_column(String(64))
    qr_code: Mapped[str] = mapped_column(Text)
    # What was sent to WeCom (staff list, ...), to update only codes whose declaration changed.
    fingerprint: Mapped[str] = mapped_column(String(64))
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
