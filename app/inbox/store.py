"""Writing and claiming inbox rows. Functions take a session and only flush; callers commit."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.inbox.models import DONE, FAILED, PENDING, InboxEvent
from app.logs import mask_phones
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


async def claim_due(session: AsyncSession, now: datetime, inbox_id: int | None = None
                    ) -> InboxEvent | None:
    """Lock the oldest due pending row (or the given one) for this transaction.

    On PostgreSQL `FOR UPDATE SKIP LOCKED` lets replicas take different rows; the lock is held
    until the unit of work commits, so the handler's effects and `done` land together. SQLite
    runs one writer at a time (BEGIN IMMEDIATE), which gives the same guarantee.
    """
    query = (select(InboxEvent)
             .where(InboxEvent.status == PENDING, InboxEvent.next_attempt_at <= now)
             .order_by(InboxEvent.id).limit(1)
             .with_for_update(skip_locked=True))
    if inbox_id is not None:
        query = query.where(InboxEvent.id == inbox_id)
    return (await session.execute(query)).scalar_one_or_none()


def mark_done(row: InboxEvent, handler: str | None, reply: str | None, now: datetime) -> None:
    row.status = DONE
    row.handler = handler
    row.reply = reply
    row.processed_at = now
    row.attempts += 1
    row.last_error = None


def mark_failed_attempt(row: InboxEvent, error: str, now: datetime, *, max_attempts: int,
                        base_s: float, max_s: float) -> None:
    """Count the attempt; schedule a retry with exponential backoff, or park the row as failed."""
    row.attempts += 1
    row.last_error = mask_phones(error)[:MAX_ERROR_CHARS]
    if row.attempts >= max_attempts:
        row.status = FAILED
        row.processed_at = now
        return
    delay = min(base_s * 2 ** (row.attempts - 1), max_s)
    # Jitter spreads retries of a batch that failed together (e.g. a database blip).
    row.next_attempt_at = now + timedelta(seconds=delay * random.uniform(0.8, 1.2))


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
    return len(rows)
