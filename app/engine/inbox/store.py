"""Writing and claiming inbox rows. Functions take a session and only flush; callers commit.

The hot paths (accept, claim, finish) are single Core statements, the per-row ones built once:
every callback and every handled event pays for them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningUpdate

from app.engine.db import insert_for, rowcount, utcnow
from app.engine.inbox.models import DONE, FAILED, PENDING, InboxEvent
from app.engine.liveness import DIALECTS, lease_free
from app.engine.wecom.events import Event

MAX_ERROR_CHARS = 2000
# Core statements on the table skip the ORM's bulk-persistence layer, which costs more CPU
# than the statement itself on these one-row paths.
T = InboxEvent.__table__.c
TABLE = InboxEvent.__table__


@dataclass(frozen=True)
class Accepted:
    """What storing a callback found: a new row, or the row of an earlier delivery."""

    inbox_id: int
    duplicate: bool
    status: str
    reply: str | None


def new_row(event: Event, payload: str, callback_id: str) -> dict[str, Any]:
    now = utcnow()
    return {"dedupe_key": event.dedupe_key(), "kind": event.kind,
            "order_key": event.order_key(), "payload": payload,
            "callback_id": callback_id, "received_at": now, "status": PENDING,
            "attempts": 0, "next_attempt_at": now}


async def accept_many(session: AsyncSession, rows: list[dict[str, Any]]) -> list[Accepted]:
    """Insert the rows whose dedupe key is not stored yet, in one statement; report, per row
    and in order, which inbox row holds it (a retry, or a twin in the same batch, is a
    duplicate of the first)."""
    # One statement compiled once and cached, run with many parameter sets: SQLAlchemy's
    # "insertmanyvalues" turns it into multi-row INSERTs with RETURNING on both databases.
    statement = (insert_for(session, TABLE).on_conflict_do_nothing(index_elements=["dedupe_key"])
                 .returning(T.id, T.dedupe_key))
    inserted = {key: row_id for row_id, key in (await session.execute(statement, rows)).all()}
    earlier = await _stored(session, {r["dedupe_key"] for r in rows} - inserted.keys())
    results, seen = [], set()
    for row in rows:
        key = row["dedupe_key"]
        if key in inserted:
            results.append(Accepted(inserted[key], key in seen, status=PENDING, reply=None))
        else:
            results.append(earlier[key])
        seen.add(key)
    return results


async def _stored(session: AsyncSession, keys: set[str]) -> dict[str, Accepted]:
    if not keys:
        return {}
    query = (select(InboxEvent.dedupe_key, InboxEvent.id, InboxEvent.status, InboxEvent.reply)
             .where(InboxEvent.dedupe_key.in_(keys)))
    return {row.dedupe_key: Accepted(row.id, True, row.status, row.reply)
            for row in (await session.execute(query)).all()}


@dataclass(frozen=True)
class Claimed:
    """A row a worker holds the lease on, with what handling it needs."""

    inbox_id: int
    payload: str
    callback_id: str
    kind: str
    attempts: int
    received_at: datetime
    lease_until: datetime


# Built once: building a statement and its cache key costs more than running it, and these
# run for every claimed and handled event.
_NOW: BindParameter[datetime] = bindparam("now")
_EARLIER = TABLE.alias("earlier")
# A row waits while an older row of its order key is pending (being handled, or waiting for
# a retry): so two lanes or replicas never handle one group's join and quit out of order. A
# parked (failed) row no longer holds the rest back.
_FIRST_OF_ITS_KEY = or_(T.order_key.is_(None), ~exists().where(
    _EARLIER.c.order_key == T.order_key, _EARLIER.c.status == PENDING, _EARLIER.c.id < T.id))


def _pick(dialect: str) -> Select[int]:
    return (select(T.id)
            .where(T.status == PENDING, T.next_attempt_at <= _NOW,
                   lease_free(T.lease_owner, T.lease_until, _NOW, dialect), _FIRST_OF_ITS_KEY)
            .order_by(T.id).limit(bindparam("limit")))


# The columns Claimed takes, in order (before its lease).
_ClaimRow = ReturningUpdate[int, str, str, str, int, datetime]


def _claim_statement(pick: Select[int]) -> _ClaimRow:
    return (update(TABLE)
            .where(T.id.in_(pick.with_for_update(skip_locked=True)))
            .values(lease_owner=bindparam("owner"), lease_until=bindparam("until"),
                    attempts=T.attempts + 1)
            .returning(T.id, T.payload, T.callback_id, T.kind, T.attempts, T.received_at))


# Per dialect: on PostgreSQL a row whose claimer's session ended is free at once.
CLAIM_DUE = {d: _claim_statement(_pick(d)) for d in DIALECTS}
CLAIM_ONE = {d: _claim_statement(_pick(d).where(T.id == bindparam("inbox_id")))
             for d in DIALECTS}
_LEASED = and_(T.id == bindparam("inbox_id"), T.status == PENDING,
               T.lease_owner == bindparam("owner"))
FINISH = (update(TABLE).where(_LEASED)
          .values(status=DONE, handler=bindparam("handler"), reply=bindparam("reply"),
                  processed_at=bindparam("processed_at"), last_error=None, lease_owner=None,
                  lease_until=None))


async def claim(session: AsyncSession, owner: str, now: datetime, lease_s: float,
                limit: int = 1, inbox_id: int | None = None) -> list[Claimed]:
    """Lease up to `limit` due rows, oldest first (or the given one), and count the attempt.

    `FOR UPDATE SKIP LOCKED` lets PostgreSQL replicas claim different rows at once; SQLite has
    one writer at a time. The caller commits at once, so no lock is held while handling.
    """
    until = now + timedelta(seconds=lease_s)
    params = {"now": now, "limit": limit, "owner": owner, "until": until, "inbox_id": inbox_id}
    statement = (CLAIM_DUE if inbox_id is None else CLAIM_ONE)[session.get_bind().dialect.name]
    rows = (await session.execute(statement, params)).all()
    return sorted((Claimed(*row, lease_until=until) for row in rows),
                  key=lambda c: c.inbox_id)


async def finish(session: AsyncSession, claimed: Claimed, owner: str, handler: str | None,
                 reply: str | None, now: datetime) -> bool:
    """Mark the row done in the handler's unit of work; False if our lease was taken over
    (then the caller rolls back, and the handler's effects with it)."""
    result = await session.execute(FINISH, {
        "inbox_id": claimed.inbox_id, "owner": owner, "handler": handler, "reply": reply,
        "processed_at": now})
    return rowcount(result) == 1


async def record_failure(session: AsyncSession, claimed: Claimed, owner: str,
                         values: dict[str, Any]) -> bool:
    """Store a failed attempt's outcome (see failure_values); False if the lease was lost."""
    result = await session.execute(
        update(TABLE).where(_LEASED).values(**values),
        {"inbox_id": claimed.inbox_id, "owner": owner})
    return rowcount(result) == 1


def failure_values(attempts: int, error: str, now: datetime, *, max_attempts: int,
                   base_s: float, max_s: float) -> dict[str, Any]:
    """Release the lease; schedule a retry with exponential backoff, or park the row."""
    values: dict[str, Any] = {"last_error": error[:MAX_ERROR_CHARS], "lease_owner": None,
                              "lease_until": None}
    if attempts >= max_attempts:
        return {**values, "status": FAILED, "processed_at": now}
    return {**values, "next_attempt_at": now + timedelta(seconds=backoff_s(attempts, base_s,
                                                                            max_s))}


def backoff_s(attempts: int, base_s: float, max_s: float) -> float:
    """base · 2^(attempts-1), capped, with ±20 % jitter to spread a batch that failed together."""
    return min(base_s * 2.0 ** (attempts - 1), max_s) * random.uniform(0.8, 1.2)


async def release_leases(session: AsyncSession, owner: str | None = None) -> int:
    """Forget the leases of `owner` (a worker shutting down), or every lease (SQLite at start:
    the file belongs to one process, so any lease left is a dead one)."""
    held = T.lease_owner.is_not(None) if owner is None else T.lease_owner == owner
    result = await session.execute(
        update(TABLE).where(T.status == PENDING, held).values(lease_owner=None, lease_until=None))
    return rowcount(result) or 0


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
        delete(TABLE).where(T.status == DONE, T.processed_at < processed_before))
    return rowcount(result) or 0
