"""Writing and claiming inbox rows. Functions take a session and only flush; callers commit."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.inbox.models import DONE, FAILED, PENDING, InboxEvent
from app.wecom.events import Event

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class Accepted:
    """What storing a callback found: a new row, or the row of an earlier delivery."""

    inbox_id: int
    duplicate: bool
    status: str
    reply: str | None


async def accept(session: AsyncSession, event: Event, payload: str, callback_id: str) -> Accepted:
    """Insert the event unless its dedupe key is already stored; report which row holds it."""
    values = {
        "dedupe_key": event.dedupe_key(), "kind": event.kind, "payload": payload,
        "callback_id": callback_id, "received_at": utcnow(), "status": PENDING,
        "attempts": 0, "next_attempt_at": utcnow(),
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (insert(InboxEvent).values(**values)
                 .on_conflict_do_nothing(index_elements=["dedupe_key"])
                 .returning(InboxEvent.id))
    new_id = (await session.execute(statement)).scalar_one_or_none()
    if new_id is not None:
        return Accepted(new_id, duplicate=False, status=PENDING, reply=None)
    row = (await session.execute(
        select(InboxEvent.id, InboxEvent.status, InboxEvent.reply)
        .where(InboxEvent.dedupe_key == values["dedupe_key"])
    )).one()
    return Accepted(row.id, duplicate=True, status=row.status, reply=row.reply)


@dataclass(frozen=True)
class Claimed:
    """A row a worker holds the lease on, with what handling it needs."""

    inbox_id: int
    payload: str
    callback_id: str
    kind: str
    attempts: int
    received_at: datetime


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(InboxEvent.status == PENDING, InboxEvent.next_attempt_at <= now,
                or_(InboxEvent.lease_until.is_(None), InboxEvent.lease_until < now))


async def claim(session: AsyncSession, owner: str, now: datetime, lease_s: float,
                inbox_id: int | None = None) -> Claimed | None:
    """Lease the oldest due row (or the given one) to `owner` and count the attempt.

    `FOR UPDATE SKIP LOCKED` lets PostgreSQL replicas claim different rows at once; SQLite has
    one writer at a time. The caller commits at once, so no lock is held while handling.
    """
    pick = select(InboxEvent.id).where(_due(now)).order_by(InboxEvent.id).limit(1)
    if inbox_id is not None:
        pick = pick.where(InboxEvent.id == inbox_id)
    statement = (update(InboxEvent)
                 .where(InboxEvent.id == pick.with_for_update(skip_locked=True).scalar_subquery())
                 .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_s),
                         attempts=InboxEvent.attempts + 1)
                 .returning(InboxEvent.id, InboxEvent.payload, InboxEvent.callback_id,
                            InboxEvent.kind, InboxEvent.attempts, InboxEvent.received_at))
    row = (await session.execute(statement, execution_options={"synchronize_session": False})
           ).one_or_none()
    return Claimed(*row) if row is not None else None


async def lock_leased(session: AsyncSession, claimed: Claimed, owner: str) -> InboxEvent | None:
    """The row, locked for this unit of work, if `owner` still holds its lease."""
    query = (select(InboxEvent)
             .where(InboxEvent.id == claimed.inbox_id, InboxEvent.status == PENDING,
                    InboxEvent.lease_owner == owner)
             .with_for_update())
    return (await session.execute(query)).scalar_one_or_none()


def mark_done(row: InboxEvent, handler: str | None, reply: str | None, now: datetime) -> None:
    row.status, row.handler, row.reply, row.processed_at = DONE, handler, reply, now
    row.last_error, row.lease_owner, row.lease_until = None, None, None


def mark_failed_attempt(row: InboxEvent, error: str, now: datetime, *, max_attempts: int,
                        base_s: float, max_s: float) -> None:
    """Release the lease; schedule a retry with exponential backoff, or park the row."""
    row.last_error = error[:MAX_ERROR_CHARS]
    row.lease_owner, row.lease_until = None, None
    if row.attempts >= max_attempts:
        row.status, row.processed_at = FAILED, now
        return
    row.next_attempt_at = now + timedelta(seconds=backoff_s(row.attempts, base_s, max_s))


def backoff_s(attempts: int, base_s: float, max_s: float) -> float:
    """base · 2^(attempts-1), capped, with ±20 % jitter to spread a batch that failed together."""
    return min(base_s * 2 ** (attempts - 1), max_s) * random.uniform(0.8, 1.2)


async def release_leases(session: AsyncSession, owner: str | None = None) -> int:
    """Forget the leases of `owner` (a worker shutting down), or every lease (SQLite at start:
    the file belongs to one process, so any lease left is a dead one)."""
    held = InboxEvent.lease_owner.is_not(None) if owner is None else InboxEvent.lease_owner == owner
    result = await session.execute(
        update(InboxEvent).where(InboxEvent.status == PENDING, held)
        .values(lease_owner=None, lease_until=None))
    return result.rowcount or 0


async def get_row(session: AsyncSession, inbox_id: int) -> InboxEvent | None:
    return await session.get(InboxEvent, inbox_id)


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(InboxEvent.status, func.count()).group_by(InboxEvent.status))
    return {status: count for status, count in rows.all()}


async def failed_rows(session: AsyncSession, limit: int = 50) -> list[InboxEvent]:
    query = (select(InboxEvent).where(InboxEvent.status == FAILED)
             .order_by(InboxEvent.id.desc()).limit(limit))
    return list((await session.execute(query)).scalars())


async def requeue_failed(session: AsyncSession, ids: list[int] | None, now: datetime) -> int:
    """Give parked rows a fresh set of attempts (all of them when `ids` is None)."""
    query = select(InboxEvent).where(InboxEvent.status == FAILED)
    if ids is not None:
        query = query.where(InboxEvent.id.in_(ids))
    rows = list((await session.execute(query)).scalars())
    for row in rows:
        row.status, row.attempts, row.next_attempt_at, row.processed_at = PENDING, 0, now, None
        row.lease_owner, row.lease_until = None, None
    return len(rows)


async def purge_done(session: AsyncSession, processed_before: datetime) -> int:
    """Delete handled rows processed before the cutoff; failed rows stay for the operator."""
    result = await session.execute(
        delete(InboxEvent).where(InboxEvent.status == DONE,
                                 InboxEvent.processed_at < processed_before))
    return result.rowcount or 0
