"""微信客服 (kf) state: per kf account where reading stopped, per customer the window in which
sopbot may still answer, and the messages WeCom reported it could not deliver."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.engine.db import Base, UTCDateTime, id_column, utcnow


class KfAccount(Base):
    """One kf account: its kf/sync_msg cursor, the latest callback token, and who reads it."""

    __tablename__ = "kf_account"

    id: Mapped[int] = id_column()
    open_kfid: Mapped[str] = mapped_column(String(64), unique=True)
    cursor: Mapped[str | None] = mapped_column(String(64), default=None)
    token: Mapped[str | None] = mapped_column(String(128), default=None)
    token_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Bumped by every kf_msg_or_event; `pulled` is the value the last complete read covered,
    # so news that arrives during a read is read too.
    news: Mapped[int] = mapped_column(Integer, default=0)
    pulled: Mapped[int] = mapped_column(Integer, default=0)
    # One reader per account at a time, across replicas; also the wait after a failed read.
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class KfConversation(Base):
    """A customer of a kf account: sopbot may answer within 48 h of their last message, at
    most 5 times per message (wecom-reference §5.11)."""

    __tablename__ = "kf_conversation"
    __table_args__ = (UniqueConstraint("open_kfid", "external_userid",
                                       name="uq_kf_conversation_account_customer"),)

    id: Mapped[int] = id_column()
    open_kfid: Mapped[str] = mapped_column(String(64))
    external_userid: Mapped[str] = mapped_column(String(64))
    last_customer_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    answers: Mapped[int] = mapped_column(Integer, default=0)  # since their last message
    misses: Mapped[int] = mapped_column(Integer, default=0)  # questions in a row not matched
    # Handed to a person: sopbot stays quiet until the session ends (or 48 h pass).
    handed_off_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KfSendFailure(Base):
    """msg_send_fail: a message WeCom accepted but could not deliver, and why (fail_type)."""

    __tablename__ = "kf_send_failure"

    id: Mapped[int] = id_column()
    open_kfid: Mapped[str] = mapped_column(String(64))
    external_userid: Mapped[str] = mapped_column(String(64))
    fail_msgid: Mapped[str] = mapped_column(String(64))
    fail_type: Mapped[int | None] = mapped_column(Integer, default=None)
    msgid: Mapped[str] = mapped_column(String(128), unique=True)  # of the event: once each
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KeywordHit(Base):
    """A question a keyword rule answered (hits per rule, per segment, over time)."""

    __tablename__ = "keyword_hit"
    __table_args__ = (Index("ix_keyword_hit_rule_at", "rule_id", "at"),)

    id: Mapped[int] = id_column()
    rule_id: Mapped[str] = mapped_column(String(64))
    segment: Mapped[str | None] = mapped_column(String(64), default=None)
    external_userid: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UnansweredQuestion(Base):
    """A question no rule matched: what operators read to write the next rules."""

    __tablename__ = "unanswered_question"
    __table_args__ = (Index("ix_unanswered_question_at", "at"),)

    id: Mapped[int] = id_column()
    open_kfid: Mapped[str] = mapped_column(String(64))
    external_userid: Mapped[str] = mapped_column(String(64))
    segment: Mapped[str | None] = mapped_column(String(64), default=None)
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KfDialog(Base):
    """The verification dialog with one customer in 微信客服: where it stands and what was
    given so far (it must survive a deploy). Gone once submitted, cancelled or expired."""

    __tablename__ = "kf_dialog"
    __table_args__ = (UniqueConstraint("open_kfid", "external_userid",
                                       name="uq_kf_dialog_account_customer"),)

    id: Mapped[int] = id_column()
    open_kfid: Mapped[str] = mapped_column(String(64))
    external_userid: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(16))  # phone, identity, region, photos
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    identity_type: Mapped[str | None] = mapped_column(String(32), default=None)
    region: Mapped[str | None] = mapped_column(String(32), default=None)
    photos: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of stored names
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
