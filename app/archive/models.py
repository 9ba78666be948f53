"""The chat archive as sopbot keeps it: where reading stopped, the messages (text only for
SOPBOT_ARCHIVE_TEXT_DAYS; the rows stay for dedupe and evidence), the records that could not be
opened, and the rollups every page reads (per group per day, per speaker per group per day, per
speaker per group). Rollups are what pages and the lifecycle read: cheap at 100k members and
millions of messages; the messages are never scanned for a report."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.engine.db import Base, UTCDateTime, id_column, utcnow


class ArchiveReader(Base):
    """One corp's reader: the seq cursor, who holds the lease, and how current it is."""

    __tablename__ = "archive_reader"

    id: Mapped[int] = id_column()
    corp_id: Mapped[str] = mapped_column(String(64), unique=True)
    # The largest seq stored; the next page starts after it (GetChatData excludes it).
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # Bumped by every msgaudit_notify; `pulled` is what the last complete read covered.
    news: Mapped[int] = mapped_column(Integer, default=0)
    pulled: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The last read that reached the end (a short page): lag is measured from here.
    caught_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_msgtime: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    gaps: Mapped[int] = mapped_column(Integer, default=0)  # seqs missing between pages
    # When the reader first ran: lag counts from here until it first reads to the end.
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class ArchivedMessage(Base):
    """One archived message. `text` is emptied after the retention days; a recalled message
    loses its text at once and leaves the rollups."""

    __tablename__ = "archive_message"
    __table_args__ = (Index("ix_archive_message_chat_time", "chat_id", "msgtime"),
                      Index("ix_archive_message_msgtime", "msgtime"))

    id: Mapped[int] = id_column()
    msgid: Mapped[str] = mapped_column(String(128), unique=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    chat_id: Mapped[str] = mapped_column(String(64), default="")  # roomid; "" one to one
    sender: Mapped[str] = mapped_column(String(64))
    sender_kind: Mapped[str] = mapped_column(String(8))  # app/engine/wecom/archive_events.py
    msgtime: Mapped[datetime] = mapped_column(UTCDateTime())
    msgtype: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text, default=None)
    recalled: Mapped[bool] = mapped_column(Boolean, default=False)


class ArchiveQuarantine(Base):
    """A record that could not be opened (it killed the SDK's process, or no private key of its
    publickey_ver is configured), kept raw with its seq so it can be replayed."""

    __tablename__ = "archive_quarantine"

    id: Mapped[int] = id_column()
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    msgid: Mapped[str] = mapped_column(String(128), unique=True)
    publickey_ver: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(255))
    record: Mapped[str] = mapped_column(Text)  # the record as WeCom gave it (ciphertext), JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class GroupActivityDay(Base):
    """A customer group's day (in the service's time zone, UTC+8)."""

    __tablename__ = "group_activity_day"
    __table_args__ = (UniqueConstraint("chat_id", "day", name="uq_group_activity_day"),
                      Index("ix_group_activity_day_day", "day"))

    id: Mapped[int] = id_column()
    chat_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    messages: Mapped[int] = mapped_column(Integer, default=0)  # everyone's, robots' too
    customer_messages: Mapped[int] = mapped_column(Integer, default=0)
    staff_messages: Mapped[int] = mapped_column(Integer, default=0)
    speakers: Mapped[int] = mapped_column(Integer, default=0)  # distinct customers who spoke


class SpeakerDay(Base):
    """One person's day in one group: what makes `speakers` and a member's 7/30-day counts."""

    __tablename__ = "speaker_day"
    __table_args__ = (UniqueConstraint("chat_id", "day", "userid", name="uq_speaker_day"),
                      Index("ix_speaker_day_userid_day", "userid", "day"))

    id: Mapped[int] = id_column()
    chat_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    userid: Mapped[str] = mapped_column(String(64))
    messages: Mapped[int] = mapped_column(Integer, default=0)
    answers: Mapped[int] = mapped_column(Integer, default=0)


class Speaker(Base):
    """One person in one group over all time: first and last message, totals, and the message
    that introduced them (a newcomer's first message within the intro window)."""

    __tablename__ = "speaker"
    __table_args__ = (UniqueConstraint("chat_id", "userid", name="uq_speaker"),
                      Index("ix_speaker_userid", "userid"))

    id: Mapped[int] = id_column()
    chat_id: Mapped[str] = mapped_column(String(64))
    userid: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    messages: Mapped[int] = mapped_column(Integer, default=0)
    answers: Mapped[int] = mapped_column(Integer, default=0)
    intro_msgid: Mapped[str | None] = mapped_column(String(128), default=None, index=True)


class MemberStrike(Base):
    """The group rules' ledger: a violation (points > 0) or a contribution, with the message as
    evidence. `status`: active, dismissed by an operator, or voided (the message was recalled)."""

    __tablename__ = "member_strike"
    __table_args__ = (UniqueConstraint("msgid", "rule", name="uq_member_strike_msg_rule"),
                      Index("ix_member_strike_user_at", "userid", "at"),
                      Index("ix_member_strike_status_at", "status", "at"),
                      Index("ix_member_strike_at", "at"))

    id: Mapped[int] = id_column()
    chat_id: Mapped[str] = mapped_column(String(64))
    userid: Mapped[str] = mapped_column(String(64))
    msgid: Mapped[str] = mapped_column(String(128))
    rule: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # violation | contribution
    points: Mapped[int] = mapped_column(Integer, default=1)
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # the message's time
    status: Mapped[str] = mapped_column(String(16), default="active")
    # What the ledger led to: owner_task, operator_alert, praise (None: nothing yet).
    action: Mapped[str | None] = mapped_column(String(32), default=None)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class GroupQuestion(Base):
    """A customer's question in a group, and whether someone answered it in time."""

    __tablename__ = "group_question"
    __table_args__ = (Index("ix_group_question_chat_asked", "chat_id", "asked_at"),
                      Index("ix_group_question_asked", "asked_at"))

    id: Mapped[int] = id_column()
    msgid: Mapped[str] = mapped_column(String(128), unique=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    segment: Mapped[str | None] = mapped_column(String(64), default=None)
    asker: Mapped[str] = mapped_column(String(64))
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Normalised text: what questions are grouped and ranked by.
    key: Mapped[str] = mapped_column(String(200))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    answered_by: Mapped[str | None] = mapped_column(String(64), default=None)
    answer_msgid: Mapped[str | None] = mapped_column(String(128), default=None, index=True)
    answer_kind: Mapped[str | None] = mapped_column(String(8), default=None)  # sender_kind
    keyword_rule: Mapped[str | None] = mapped_column(String(128), default=None)


class GroupKeywordDay(Base):
    """keywords.yaml rules hit by group messages, per day and segment (WeCom's own group
    auto-reply answers them; sopbot counts)."""

    __tablename__ = "group_keyword_day"
    __table_args__ = (UniqueConstraint("day", "segment", "rule", name="uq_group_keyword_day"),)

    id: Mapped[int] = id_column()
    day: Mapped[date] = mapped_column(Date)
    segment: Mapped[str] = mapped_column(String(64), default="")
    rule: Mapped[str] = mapped_column(String(128))
    hits: Mapped[int] = mapped_column(Integer, default=0)


class OwnerGroupStat(Base):
    """WeCom's groupchat/statistic for one owner and day: the honest fallback when no archive
    is configured (per owner, never per group)."""

    __tablename__ = "owner_group_stat"
    __table_args__ = (UniqueConstraint("owner", "day", name="uq_owner_group_stat"),)

    id: Mapped[int] = id_column()
    owner: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    chat_total: Mapped[int] = mapped_column(Integer, default=0)
    chat_has_msg: Mapped[int] = mapped_column(Integer, default=0)
    member_total: Mapped[int] = mapped_column(Integer, default=0)
    member_has_msg: Mapped[int] = mapped_column(Integer, default=0)
    msg_total: Mapped[int] = mapped_column(Integer, default=0)
    new_member_cnt: Mapped[int] = mapped_column(Integer, default=0)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
