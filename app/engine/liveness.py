"""Claims that end with their claimer: on PostgreSQL a process that claims inbox or outbox rows
holds a session-level advisory lock named after its owner id, on a connection of its own, for
as long as it lives. PostgreSQL drops a session's locks the moment its connection ends, and a
process killed outright (kill -9, a crash, a lost container) takes its sockets with it. So a
claim whose owner holds no such lock any more is free at once, whatever its lease says
(`owner_gone`); the lease stays the fallback for a process that hangs while still connected,
and on SQLite, whose file belongs to one process.

Every claim statement asks `owner_gone` of the rows it finds leased; an owner ensures its lock
(`Liveness.ensure`) before it claims anything, so no claim is ever made by an owner that others
would take for dead.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from typing import Any

from sqlalchemy import ColumnElement, cast, column, func, or_, select, table, text
from sqlalchemy.dialects.postgresql import OID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.engine.db import Database, end_session, lock_engine
from app.engine.logs import get_logger

log = get_logger("sopbot.liveness")
# The first key of every liveness lock (the second is the owner's hash): no other advisory lock
# of sopbot uses two keys with this one.
NAMESPACE = 0x534F_4C56  # "SOLV"
# How often an owner checks, before claiming, that its lock is still there.
CHECK_EVERY_S = 1.0

_LOCKS = table("pg_locks", column("locktype"), column("classid"), column("objid"),
               column("objsubid"), column("granted"))
# The owners alive now: the second key of every liveness lock held (two-key locks: objsubid 2).
_LIVE = select(_LOCKS.c.objid).where(_LOCKS.c.locktype == "advisory",
                                     _LOCKS.c.classid == NAMESPACE, _LOCKS.c.objsubid == 2,
                                     _LOCKS.c.granted)
_TAKE = text("SELECT pg_advisory_lock(:namespace, hashtext(:owner))")
_HOLDING = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = "
                ":namespace AND objid = hashtext(:owner)::oid AND objsubid = 2 "
                "AND pid = pg_backend_pid() AND granted")


def worker_id() -> str:
    """A new owner id: this host, this process, and a random part (one process may run several
    owners, tests their replicas)."""
    return f"{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_gone(lease_owner: Any) -> ColumnElement[bool]:
    """PostgreSQL: the lease's owner holds no liveness lock (its session ended). A lease is
    "OWNER/N" (outbox) or "OWNER" (inbox). One lookup of pg_locks per statement (an
    uncorrelated NOT IN), however many rows it looks at."""
    owner = func.split_part(lease_owner, "/", 1)
    return cast(func.hashtext(owner), OID).not_in(_LIVE)


def lease_free(lease_owner: Any, lease_until: Any, now: Any,
               dialect: str) -> ColumnElement[bool]:
    """A claim others may take: never leased, its lease over, or (PostgreSQL) its owner gone."""
    free = [lease_until.is_(None), lease_until < now]
    if dialect == "postgresql":
        free.append(owner_gone(lease_owner))
    return or_(*free)


DIALECTS = ("postgresql", "sqlite")


class Liveness:
    """One owner's liveness lock (PostgreSQL only; on SQLite every call is a no-op)."""

    def __init__(self, db: Database, owner: str | None = None) -> None:
        self.db, self.owner = db, owner or worker_id()
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None
        self._checked_at = float("-inf")
        self._guard = asyncio.Lock()
        db.dispose_hooks.append(self.close)  # closed with its database at the latest

    async def ensure(self) -> None:
        """Hold the lock before claiming: take it if this owner has none, or has lost it (its
        connection broke: the rows it held may have been taken over meanwhile, which its
        lease-conditional writes notice)."""
        if self.db.is_sqlite or time.monotonic() - self._checked_at < CHECK_EVERY_S:
            return
        async with self._guard:
            if not await self._holding():
                await self._take()
            self._checked_at = time.monotonic()

    async def _holding(self) -> bool:
        if self._conn is None:
            return False
        try:
            held = (await self._conn.execute(_HOLDING, self._params())).scalar()
            await self._conn.commit()  # never idle in a transaction
            return bool(held)
        except Exception:
            log.warning("liveness_lock_lost", owner=self.owner)
            await self._drop_connection()
            return False

    async def _take(self) -> None:
        if self._engine is None:
            self._engine = lock_engine(self.db.url)
        conn = await self._engine.connect()
        await conn.execute(_TAKE, self._params())
        await conn.commit()  # a session-level lock outlives the transaction
        self._conn = conn

    def _params(self) -> dict[str, Any]:
        return {"namespace": NAMESPACE, "owner": self.owner}

    async def close(self) -> None:
        """Let go (a graceful stop): the claims still leased become free at once."""
        await self._drop_connection()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await end_session(conn)
