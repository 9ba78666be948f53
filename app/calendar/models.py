"""content_item: what operators queue for the calendar's columns (《今日上新》, ...)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class ContentItem(Base):
    __tablename__ = "content_item"
    # The next item of a column: the oldest not used yet.
    __table_args__ = (Index("ix_content_item_column_used", "column_name", "used_at", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    column_name: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str | None] = mapped_column(String(2048), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Taken by a slot: when, and for which (slot, day), so a retried post takes the same item.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    used_for: Mapped[str | None] = mapped_column(String(64), default=None, unique=True)
