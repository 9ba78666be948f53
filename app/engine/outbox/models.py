"""The outbox table (one row per message to send) and the rate-limit slots."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.engine.db import Base, UTCDateTime, utcnow

PENDING = "pending"
SENT = "sent"
DEAD = "dead"  # WeCom refused it for good, or the attempts ran out
EXPIRED = "expired"  # its deadline passed before it could go out; never sent
UNKNOWN = "unknown"  # it may or may not have arrived, and resending could double it
FINAL_STATUSES = (SENT, DEAD, EXPIRED, UNKNOWN)

FAST = 0  # welcomes and other messages with a short deadline: their own lane
NORMAL = 5
BULK = 9


class OutboxMessage(Base):
    __tablename__ = "outbox_message"
    # Claims walk pending rows by priority, then age; this index serves them without a sort.
    __table_args__ = (
        Index("ix_outbox_message_status_priority_id", "status", "priority", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # Chosen by the handler from what the message is for (welcome:{code},
    # post:{slot}:{date}:{chat}), so a retried handler cannot enqueue it twice.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    api: Mapped[str] = mapped_column(String(80))  # the ApiCall path
    request: Mapped[str] = mapped_column(Text)  # ApiCall.stored() as JSON
    priority: Mapped[int] = mapped_column(SmallInteger, default=NORMAL)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Requests sharing a rate limit (an API, a robot) share a key; see
    # app/engine/outbox/ratelimit.py.
    rate_key: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Committed just before a request WeCom cannot deduplicate leaves: a sender that finds it
    # set on a row it took over knows the request may have gone out, and does not resend it.
    in_flight_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    errcode: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    response: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class RateSlot(Base):
    """When the next request of a rate key may go out (shared by every replica)."""

    __tablename__ = "rate_slot"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime())
