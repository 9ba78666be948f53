"""console_operator: the console password of an operator (a userid of SOPBOT_OPERATORS).

Who is an operator stays in SOPBOT_OPERATORS; a row here only says how they log in, so removing
a userid from the setting ends their access even though the row remains.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class ConsoleOperator(Base):
    __tablename__ = "console_operator"

    userid: Mapped[str] = mapped_column(String(64), primary_key=True)
    # "scrypt$n$r$p$salt$hash" (app/console/accounts.py): self-describing, so the cost can be
    # raised later without breaking the hashes already stored.
    password_hash: Mapped[str] = mapped_column(String(255))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
