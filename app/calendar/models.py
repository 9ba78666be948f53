"""content_item: what operators queue for the calendar's columns (《今日上新》, ...); the calendar's
records (calendar_post, calendar_group_day), onboarding runs (sop_run) and operators'
announcements (calendar_announcement)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.engine.db import Base, UTCDateTime, id_column, utcnow


class ContentItem(Base):
    __tablename__ = "content_item"
    # The next item of a column: the first not used yet by position (operators reorder), then
    # the oldest.
    __table_args__ = (Index("ix_content_item_queue", "column_name", "used_at", "position",
                            "id"),)

    id: Mapped[int] = id_column()
    column_name: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str | None] = mapped_column(String(2048), default=None)
    image_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    # For one segment's slots only (a generated 光荣榜); None: any segment's.
    segment: Mapped[str | None] = mapped_column(String(64), default=None)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Taken by a slot: when, and for which (slot, day), so a retried post takes the same item.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    used_for: Mapped[str | None] = mapped_column(String(64), default=None, unique=True)


class CalendarPost(Base):
    """What became of one delivery of the calendar: queued (an outbox row of the same key
    carries it) or skipped, and why. One row per delivery: nothing is ever posted twice."""

    __tablename__ = "calendar_post"
    __table_args__ = (Index("ix_calendar_post_day", "day", "segment"),)

    id: Mapped[int] = id_column()
    key: Mapped[str] = mapped_column(String(200), unique=True)
    segment: Mapped[str] = mapped_column(String(64))
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, Asia/Shanghai
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # the planned time
    transport: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(64))
    posts: Mapped[str] = mapped_column(String(200))  # the posts it carries: morning,slot0,...
    status: Mapped[str] = mapped_column(String(16))  # queued, skipped
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A mass task's life: created (WeCom's msgid) → reminded → confirmed or missed; failed
    # when WeCom refused to create it.
    msgid: Mapped[str | None] = mapped_column(String(128), default=None)
    task_status: Mapped[str | None] = mapped_column(String(16), default=None)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class SopRun(Base):
    """One group's onboarding campaign: started on a day, one action a day, pausable."""

    __tablename__ = "sop_run"
    __table_args__ = (UniqueConstraint("chat_id", "campaign", name="uq_sop_run_chat_campaign"),)

    id: Mapped[int] = id_column()
    chat_id: Mapped[str] = mapped_column(String(64))
    campaign: Mapped[str] = mapped_column(String(32))
    # Day 1, YYYY-MM-DD Asia/Shanghai: the day after the group filled (or was created).
    started_on: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(16))  # active, paused, done
    last_day: Mapped[int] = mapped_column(Integer, default=0)  # the last day posted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GroupDay(Base):
    """A customer group had its one mass message of a day (WeCom's rule): whatever changes
    later that day (an owner, a paused run, an edited calendar), it gets no second one."""

    __tablename__ = "calendar_group_day"
    __table_args__ = (UniqueConstraint("chat_id", "day", name="uq_calendar_group_day"),)

    id: Mapped[int] = id_column()
    chat_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, Asia/Shanghai
    post_key: Mapped[str] = mapped_column(String(200))  # the delivery that served it


class Announcement(Base):
    """An operator's /announce: sent at once (the groups had no mass message today), held
    until the operator chooses (some had: WeCom would refuse a second), scheduled into a
    day's mass message of its groups, or sent to their owners as reminders."""

    __tablename__ = "calendar_announcement"
    __table_args__ = (Index("ix_calendar_announcement_status_at", "status", "at"),)

    id: Mapped[int] = id_column()
    target: Mapped[str] = mapped_column(String(128))  # as the operator wrote it
    text: Mapped[str] = mapped_column(Text)
    operator: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # held, sent, scheduled, reminded
    chat_ids: Mapped[str] = mapped_column(Text)  # its groups when asked, comma-separated
    # When it goes (scheduled) or went out (sent, reminded); None while held.
    at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
