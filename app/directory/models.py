"""platform_user: the platform's user directory (who is a registered user, under which phone)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.engine.db import Base, UTCDateTime, utcnow


class PlatformUser(Base):
    __tablename__ = "platform_user"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    platform_user_id: Mapped[str] = mapped_column(String(64), unique=True)
    # Normalised (11 digits, app/verify/phone.py) so a member's phone matches it exactly.
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str | None] = mapped_column(String(64), default=None)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
