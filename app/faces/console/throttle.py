"""Slows password guessing without letting a guesser lock an operator out.

Every login attempt is a row of console_login_attempt (in the database, so every replica counts
the same attempts), a failure from before its password is checked until it succeeds: parallel
guesses cannot all pass the check before the first one fails. Three budgets over WINDOW_S:

- per userid and client, LIMIT: a guesser at one address gets a few tries at an operator;
- per client, CLIENT_LIMIT, over every userid it types, known or not (each try costs a hash);
- per userid, USERID_LIMIT, a ceiling for a guesser with many addresses, shared only by the
  clients that never logged in as that userid within KNOWN_FOR. An address the operator logged
  in from before keeps its own budget whatever happens elsewhere, so guesses from a thousand
  addresses cannot lock the operator out of the office or home network they use.

No budget knows who the operators are, so a 429 never tells a real userid from an unknown one.
The client is the address uvicorn reports: X-Forwarded-For counts only from a proxy listed in
SOPBOT_TRUSTED_PROXIES (app/faces/web/server_options.py).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.db import Database, utcnow, xact_lock
from app.operators.models import LoginAttempt

LIMIT = 5  # per userid and client
USERID_LIMIT = 50  # per userid, over the clients it was never used from
CLIENT_LIMIT = 20  # per client, over all userids (an office behind one NAT shares it)
WINDOW_S = 15 * 60
# How long a successful login makes its client known for its userid.
KNOWN_FOR = timedelta(days=30)
# Old rows are deleted at most this often per process (a guessing flood must not grow the table).
PURGE_EVERY_S = 60.0


@dataclass(frozen=True)
class Attempt:
    """A login attempt the throttle let through (`blocked` None, counted as failed until
    `LoginThrottle.succeeded`), or the budget that refused it."""

    id: int | None
    blocked: str | None = None


class LoginThrottle:
    """The budgets and their clock; the counts are in the database each call is given."""

    def __init__(self, clock: Callable[[], datetime] = utcnow, limit: int = LIMIT,
                 userid_limit: int = USERID_LIMIT, client_limit: int = CLIENT_LIMIT,
                 window_s: float = WINDOW_S) -> None:
        self.clock, self.window = clock, timedelta(seconds=window_s)
        self.limits = {"userid_client": limit, "userid": userid_limit, "client": client_limit}
        self._purged_at = float("-inf")

    async def begin(self, db: Database, userid: str, client: str | None) -> Attempt:
        """Count an attempt as failed, or refuse it with the budget it would exceed.

        A refusal costs a read only (a guesser must not make every request a write on SQLite's
        one writer). An attempt let through is written in a transaction of its own, committed
        before the slow password check, with the budgets of its userid and its client locked
        while they are counted again: of parallel guesses exactly as many pass as the budget
        has left."""
        user, where, now = userid_key(userid), client_key(client), self.clock()
        async with db.reader() as session:
            blocked = await self._exceeded(session, user, where, now)
        if blocked is not None:
            return Attempt(None, blocked)
        async with db.unit_of_work() as session:
            await xact_lock(session, f"login.userid:{user}", f"login.client:{where}")
            await self._purge(session, now)
            blocked = await self._exceeded(session, user, where, now)
            if blocked is not None:
                return Attempt(None, blocked)
            row = LoginAttempt(userid=user, client=where, at=now, ok=False)
            session.add(row)
            await session.flush()
            return Attempt(row.id)

    async def succeeded(self, session: AsyncSession, attempt: Attempt, userid: str,
                        client: str | None) -> None:
        """The attempt was right (flush only: the login's unit of work commits it with the new
        session): its client is known for the userid from now on, and its earlier failures
        there are forgiven, which also takes them out of the client's budget."""
        user, where = userid_key(userid), client_key(client)
        await session.execute(update(LoginAttempt).where(LoginAttempt.id == attempt.id)
                              .values(ok=True))
        await session.execute(delete(LoginAttempt).where(
            LoginAttempt.userid == user, LoginAttempt.client == where,
            LoginAttempt.ok.is_(False)))

    async def _exceeded(self, session: AsyncSession, user: str, where: str,
                        now: datetime) -> str | None:
        failed = and_(LoginAttempt.ok.is_(False), LoginAttempt.at > now - self.window)
        counts = {
            "userid_client": await _count(session, failed, LoginAttempt.userid == user,
                                          LoginAttempt.client == where),
            "userid": await self._unknown_clients_failures(session, failed, user, where, now),
            "client": await _count(session, failed, LoginAttempt.client == where),
        }
        return next((name for name, count in counts.items() if count >= self.limits[name]), None)

    async def _unknown_clients_failures(self, session: AsyncSession, failed: ColumnElement[bool],
                                        user: str, where: str, now: datetime) -> int:
        """The userid's failures from clients it never logged in from; 0 for a known client."""
        known = select(LoginAttempt.client).where(
            LoginAttempt.userid == user, LoginAttempt.ok.is_(True),
            LoginAttempt.at > now - KNOWN_FOR)
        if where in set(await session.scalars(known)):
            return 0
        return await _count(session, failed, LoginAttempt.userid == user,
                            LoginAttempt.client.not_in(known))

    async def _purge(self, session: AsyncSession, now: datetime) -> None:
        if time.monotonic() - self._purged_at < PURGE_EVERY_S:
            return
        self._purged_at = time.monotonic()
        await session.execute(delete(LoginAttempt).where(
            (LoginAttempt.ok.is_(False) & (LoginAttempt.at <= now - self.window))
            | (LoginAttempt.at <= now - KNOWN_FOR)))


async def _count(session: AsyncSession, *conditions: ColumnElement[bool]) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(LoginAttempt).where(*conditions)) or 0)


def userid_key(userid: str) -> str:
    # "Op_Alice" and "op_alice " must share one budget, whatever the login compares.
    return userid.strip().lower()[:64]


def client_key(address: str | None) -> str:
    """The client an address belongs to: an IPv4 address, or an IPv6 address's /64 (one
    subscriber's, so a guesser cannot take a fresh address for every try)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return (address or "unknown")[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
