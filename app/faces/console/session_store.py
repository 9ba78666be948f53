"""Open console sessions, kept in the database (console_session) so that ending one ends it
everywhere: a logout ends every copy of that cookie, a new password or removal from
SOPBOT_OPERATORS every session of the operator, on every replica at their next click.

The browser holds a random token; the row's id is its SHA-256, so reading the table (a backup,
a replica's logs) gives no working cookie.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.db import rowcount, utcnow
from app.operators.models import ConsoleSession


def _id_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(session: AsyncSession, userid: str,
                       ttl_s: float) -> tuple[str, ConsoleSession]:
    """A new session for `userid` lasting `ttl_s`: (the browser's token, the row). Expired rows
    of anyone go at the same time (logins are rare; nothing else needs to sweep them)."""
    now = utcnow()
    await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    row = ConsoleSession(id=_id_of(token), userid=userid, csrf=secrets.token_urlsafe(24),
                         created_at=now, expires_at=now + timedelta(seconds=ttl_s))
    session.add(row)
    await session.flush()
    return token, row


async def session_for(session: AsyncSession, token: str) -> ConsoleSession | None:
    """The open session a token stands for; None when it was ended or has expired."""
    row = await session.get(ConsoleSession, _id_of(token))
    if row is None or row.expires_at <= utcnow():
        return None
    return row


async def end_session(session: AsyncSession, row: ConsoleSession) -> None:
    """End one session: every copy of its cookie opens nothing from now on."""
    await session.execute(delete(ConsoleSession).where(ConsoleSession.id == row.id))


async def end_sessions_of(session: AsyncSession, userid: str) -> int:
    """End every session of `userid`; how many there were."""
    ended = await session.execute(delete(ConsoleSession).where(ConsoleSession.userid == userid))
    return int(rowcount(ended) or 0)


async def end_sessions_except(session: AsyncSession, operators: frozenset[str]) -> int:
    """End the sessions of everyone no longer in SOPBOT_OPERATORS (at start: a userid taken
    out and later put back must log in again)."""
    ended = await session.execute(
        delete(ConsoleSession).where(ConsoleSession.userid.not_in(operators)))
    return int(rowcount(ended) or 0)
