"""The inbox table: one row per distinct callback, the raw decrypted payload kept as received."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.engine.db import Base, UTCDateTime, utcnow

PENDING = "pending"
DONE = "done"
FAILED = "failed"


class InboxEvent(Base):
    __tablename__ = "inbox_event"
    # Claims walk pending rows in id order; this index serves them without a sort. The second
    # finds an older pending row of the same order key (see Event.order_key).
    __table_args__ = (Index("ix_inbox_event_status_id", "status", "id"),
                      Index("ix_inbox_event_order", "order_key", "status", "id"))

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # Built from the decrypted payload (see Event.dedupe_key); WeCom's retries hit it.
    dedupe_key: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    # Rows sharing a key are handled one at a time, oldest first (Event.order_key).
    order_key: Mapped[str | None] = mapped_column(String(80), default=None)
    payload: Mapped[str] = mapped_column(Text)
    callback_id: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    # Counted when a worker claims the row, so a payload that kills the process is still parked.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The worker handling the row and until when; a dead worker's lease simply runs out.
    lease_owner: Mapped[str | None] = mapped_column(String(40), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    handler: Mapped[str | None] = mapped_column(String(128), default=None)
    # The plaintext passive reply a handler produced, answered again to WeCom's retries.
    reply: Mapped[str | None] = mapped_column(Text, default=None)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
