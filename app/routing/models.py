"""corp_tag: the WeCom corp tag made for each identity type, channel and region."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.engine.db import Base, UTCDateTime, utcnow


class CorpTag(Base):
    __tablename__ = "corp_tag"
    __table_args__ = (UniqueConstraint("dimension", "value", name="uq_corp_tag_dimension_value"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    dimension: Mapped[str] = mapped_column(String(16))  # identity, channel, region
    value: Mapped[str] = mapped_column(String(64))  # identity type, channel name or region
    tag_id: Mapped[str] = mapped_column(String(64))
    group_id: Mapped[str] = mapped_column(String(64))
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
