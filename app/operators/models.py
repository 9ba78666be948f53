"""The console's tables (app/faces/console): operators' passwords, open sessions and login
attempts.

Who is an operator stays in SOPBOT_OPERATORS; a console_operator row only says how they log in,
so removing a userid from the setting ends their access even though the row remains.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.engine.db import Base, UTCDateTime, id_column, utcnow


class ConsoleOperator(Base):
    __tablename__ = "console_operator"

    userid: Mapped[str] = mapped_column(String(64), primary_key=True)
    # "scrypt$n$r$p$salt$hash" (app/faces/console/accounts.py): self-describing, so the cost can be
    # raised later without breaking the hashes already stored.
    password_hash: Mapped[str] = mapped_column(String(255))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConsoleSession(Base):
    """An open console login. The browser's cookie carries a random token whose SHA-256 is the
    id here, so a copy of this table opens no session; deleting the row (logout, a new password,
    removal from SOPBOT_OPERATORS) ends every copy of the cookie on every replica."""

    __tablename__ = "console_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the token
    userid: Mapped[str] = mapped_column(String(64), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class LoginAttempt(Base):
    """One console login attempt, for the throttle (app/faces/console/throttle.py): counted as a
    failure from before its password is checked until it succeeds. Kept in the database so
    every replica counts the same attempts; failures go after the throttle's window, successes
    after KNOWN_FOR (they make an address known for its userid)."""

    __tablename__ = "console_login_attempt"
    __table_args__ = (
        Index("ix_console_login_attempt_userid", "userid", "at"),
        Index("ix_console_login_attempt_client", "client", "at"),
    )

    id: Mapped[int] = id_column()
    userid: Mapped[str] = mapped_column(String(64))  # as typed, trimmed and lower-cased
    client: Mapped[str] = mapped_column(String(64))  # throttle.client_key of the address
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
