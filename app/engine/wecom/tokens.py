"""Access tokens, one per secret, cached in the database and refreshed by one caller at a time.

WeCom intercepts a corp that calls gettoken too often (45009), and every replica needs the same
token, so the token lives in the database (wecom-reference §5.1): a caller takes it from memory,
else from the table, and only when it is missing, rejected or within REFRESH_AHEAD of expiry
fetches a new one. Refreshes are single-flight: an asyncio lock per secret inside a process, and
on PostgreSQL a transaction-scoped advisory lock across replicas, after which the row is read
again (another replica may have refreshed it meanwhile). On SQLite the database belongs to one
process, so the asyncio lock suffices and gettoken runs outside any transaction (a write
transaction there would stop every callback for the length of an HTTP call).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.engine.db import Base, Database, UTCDateTime, utcnow, xact_lock
from app.engine.logs import get_logger

log = get_logger("sopbot.wecom.tokens")
REFRESH_AHEAD = timedelta(seconds=300)
Fetch = Callable[[str], Awaitable[tuple[str, int]]]


class AccessToken(Base):
    __tablename__ = "wecom_token"

    # "<secret name>:<fingerprint of corp id + secret>": a changed secret is a new key.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(1024))  # WeCom: reserve at least 512 bytes
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())


def cache_key(secret_name: str, corp_id: str, secret: str) -> str:
    digest = hashlib.sha256(f"{corp_id}\0{secret}".encode()).hexdigest()[:16]
    return f"{secret_name}:{digest}"


@dataclass(frozen=True)
class _Cached:
    token: str
    expires_at: datetime
    fetched_at: datetime

    @property
    def refresh_at(self) -> datetime:
        """REFRESH_AHEAD before expiry, but never in the first half of the lifetime: WeCom
        hands back the same token with its remaining lifetime until it expires, and a token
        that is already inside the window must not be fetched again on every call."""
        lifetime = self.expires_at - self.fetched_at
        return self.fetched_at + max(lifetime - REFRESH_AHEAD, lifetime / 2)


class TokenStore:
    """Implements app.engine.wecom.client.TokenProvider on the database."""

    def __init__(self, db: Database, fetch: Fetch, keys: Mapping[str, str],
                 clock: Callable[[], datetime] = utcnow) -> None:
        """`fetch(secret_name)` calls gettoken; `keys` maps secret names to cache keys."""
        self.db, self.fetch, self.keys, self.clock = db, fetch, dict(keys), clock
        self._memo: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0  # gettoken calls made by this process (tests, metrics)

    async def get(self, secret: str) -> str:
        """A valid token for the secret, fetched only if none is cached."""
        if (token := self._fresh(self._memo.get(secret))) is not None:
            return token
        return await self._renew(secret, rejected=None)

    async def refresh(self, secret: str, rejected: str) -> str:
        """A token other than `rejected`: fetched, unless another caller already did."""
        return await self._renew(secret, rejected)

    def _fresh(self, cached: _Cached | None, rejected: str | None = None) -> str | None:
        if cached is None or cached.token == rejected:
            return None
        return cached.token if cached.refresh_at > self.clock() else None

    async def _renew(self, secret: str, rejected: str | None) -> str:
        async with self._locks.setdefault(secret, asyncio.Lock()):
            if (token := self._fresh(self._memo.get(secret), rejected)) is not None:
                return token  # a caller we waited for refreshed it
            cached = await (self._renew_sqlite(secret, rejected) if self.db.is_sqlite
                            else self._renew_locked(secret, rejected))
            self._memo[secret] = cached
            return cached.token

    async def _renew_sqlite(self, secret: str, rejected: str | None) -> _Cached:
        async with self.db.reader() as session:
            stored = await self._stored(session, secret)
        if self._fresh(stored, rejected) is not None:
            assert stored is not None
            return stored
        fetched = await self._fetch(secret)
        async with self.db.unit_of_work() as session:
            await self._save(session, secret, fetched)
        return fetched

    async def _renew_locked(self, secret: str, rejected: str | None) -> _Cached:
        async with self.db.unit_of_work() as session:
            await xact_lock(session, self.keys[secret])
            stored = await self._stored(session, secret)
            if self._fresh(stored, rejected) is not None:
                assert stored is not None
                return stored  # another replica refreshed it while we waited for the lock
            fetched = await self._fetch(secret)
            await self._save(session, secret, fetched)
            return fetched

    async def _stored(self, session: AsyncSession, secret: str) -> _Cached | None:
        row = await session.get(AccessToken, self.keys[secret])
        return None if row is None else _Cached(row.token, row.expires_at, row.fetched_at)

    async def _fetch(self, secret: str) -> _Cached:
        token, expires_in = await self.fetch(secret)
        self.fetches += 1
        log.info("access_token_fetched", credential=secret, expires_in=expires_in)
        now = self.clock()
        return _Cached(token, now + timedelta(seconds=expires_in), now)

    async def _save(self, session: AsyncSession, secret: str, cached: _Cached) -> None:
        await session.merge(AccessToken(key=self.keys[secret], token=cached.token,
                                        expires_at=cached.expires_at,
                                        fetched_at=cached.fetched_at))
