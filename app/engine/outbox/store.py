"""Writing, claiming and settling outbox rows. Functions take a session and only flush.

`enqueue` runs inside a handler's unit of work, so a message is stored exactly when the state
change that called for it is. The sender's statements are lease-conditional, like the inbox's:
a sender whose lease ran out cannot overwrite the outcome of the one that took the row over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningUpdate

from app.engine import wakeups
from app.engine.db import rowcount, utcnow
from app.engine.liveness import DIALECTS, lease_free
from app.engine.outbox.models import DEAD, FAST, NORMAL, PENDING, UNKNOWN, OutboxMessage
from app.engine.outbox.ratelimit import rate_key
from app.engine.wecom.api import ApiCall

T = OutboxMessage.__table__.c
TABLE = OutboxMessage.__table__
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class Claimed:
    """A row a sender holds the lease on."""

    id: int
    idempotency_key: str
    kind: str
    api: str
    request: str
    priority: int
    deadline: datetime | None
    rate_key: str
    attempts: int
    in_flight_at: datetime | None  # an earlier attempt may have reached WeCom at this time
    created_at: datetime
    lease_until: datetime
    lease: str  # this claim's own lease token: settling checks it


@dataclass(frozen=True)
class Message:
    """A message to queue: what `enqueue_many` stores as one outbox row."""

    key: str
    call: ApiCall[Any]
    kind: str
    priority: int = NORMAL
    deadline: datetime | None = None
    not_before: datetime | None = None

    def row(self, now: datetime) -> dict[str, Any]:
        stored = self.call.stored()
        return {"idempotency_key": self.key, "kind": self.kind, "api": self.call.path,
                "priority": self.priority,
                "request": json.dumps(stored, ensure_ascii=False, separators=(",", ":")),
                "deadline": self.deadline, "rate_key": rate_key(self.call.path, stored),
                "status": PENDING, "attempts": 0, "next_attempt_at": self.not_before or now,
                "created_at": now}


# Built once per dialect: the callback path queues welcomes with every friend add, and building
# and caching a statement costs more than running it.
_ENQUEUE = {name: insert(TABLE).on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(T.idempotency_key)
            for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}


async def enqueue(session: AsyncSession, key: str, call: ApiCall[Any], *, kind: str,
                  priority: int = NORMAL, deadline: datetime | None = None,
                  not_before: datetime | None = None) -> bool:
    """Store a message to send; False if one with this idempotency key exists already."""
    message = Message(key, call, kind, priority, deadline, not_before)
    return key in await enqueue_many(session, [message])


async def enqueue_many(session: AsyncSession, messages: list[Message]) -> set[str]:
    """Store messages with one statement; the keys that were new (the others existed)."""
    if not messages:
        return set()
    now = utcnow()
    statement = _ENQUEUE[session.get_bind().dialect.name]
    # RETURNING rather than rowcount, which psycopg's async cursor reports as -1 here.
    result = await session.execute(statement, [m.row(now) for m in messages])
    stored = set(result.scalars().all())
    _wake_for(session, [m.priority for m in messages if m.key in stored])
    return stored


def _wake_for(session: AsyncSession, priorities: list[int]) -> None:
    """Note the most urgent priority made pending, for the sender's commit hook."""
    if priorities:
        waiting = wakeups.noted(session, wakeups.OUTBOX_PENDING)
        wakeups.note(session, wakeups.OUTBOX_PENDING,
                     min(priorities if waiting is None else [*priorities, waiting]))


_LOCK = select(T.id).where(T.idempotency_key == bindparam("key")).with_for_update()


async def lock(session: AsyncSession, key: str) -> bool:
    """Wait for, then hold, the row of `key` until this unit of work ends (a caller that
    records something about a message orders itself with the sender's settling of it);
    False if there is no such row."""
    return (await session.execute(_LOCK, {"key": key})).first() is not None


_NOW: BindParameter[datetime] = bindparam("now")
_PICK = select(T.id).order_by(T.priority, T.id).limit(bindparam("limit"))


def _due(dialect: str) -> ColumnElement[bool]:
    return and_(T.status == PENDING, T.next_attempt_at <= _NOW,
                lease_free(T.lease_owner, T.lease_until, _NOW, dialect))


# The columns Claimed takes, in order (before its lease).
_ClaimRow = ReturningUpdate[int, str, str, str, str, int, datetime | None, str, int,
                           datetime | None, datetime]


def _claim_statement(pick: Select[int]) -> _ClaimRow:
    return (update(TABLE)
            .where(T.id.in_(pick.with_for_update(skip_locked=True)))
            .values(lease_owner=bindparam("owner"), lease_until=bindparam("until"),
                    attempts=T.attempts + 1)
            .returning(T.id, T.idempotency_key, T.kind, T.api, T.request, T.priority,
                       T.deadline, T.rate_key, T.attempts, T.in_flight_at, T.created_at))


# Per dialect and lane: on PostgreSQL a row whose claimer's session ended is free at once.
CLAIM = {(d, fast): _claim_statement(_PICK.where(
    _due(d), T.priority <= FAST if fast else T.priority > FAST)) for d in DIALECTS
    for fast in (True, False)}


def lease_token(owner: str, n: int) -> str:
    """A claim's lease: the sender's id and a number, so that two lanes (or two waves) of one
    process never mistake each other's lease for their own."""
    return f"{owner}/{n}"


async def claim(session: AsyncSession, lease: str, now: datetime, lease_s: float, limit: int,
                fast: bool) -> list[Claimed]:
    """Lease up to `limit` due rows of one lane, most urgent first, counting the attempt."""
    until = now + timedelta(seconds=lease_s)
    statement = CLAIM[session.get_bind().dialect.name, fast]
    rows = (await session.execute(statement, {
        "now": now, "limit": limit, "owner": lease, "until": until})).all()
    claimed = (Claimed(*row, lease_until=until, lease=lease) for row in rows)
    return sorted(claimed, key=lambda c: (c.priority, c.id))


# Built once: only the SET list varies with the outcome.
_LEASED = and_(T.id == bindparam("row_id"), T.status == PENDING,
               T.lease_owner == bindparam("owner"))


async def settle(session: AsyncSession, claimed: Claimed, values: dict[str, Any]) -> bool:
    """Write the outcome of an attempt; False if the lease was taken over meanwhile."""
    if "last_error" in values and values["last_error"]:
        values = {**values, "last_error": values["last_error"][:MAX_ERROR_CHARS]}
    result = await session.execute(update(TABLE).where(_LEASED).values(**values),
                                   {"row_id": claimed.id, "owner": claimed.lease})
    return rowcount(result) == 1


async def mark_in_flight(session: AsyncSession, claimed: Claimed, now: datetime) -> bool:
    """Note that a request may reach WeCom from now on; an earlier mark is kept, since what
    matters is when a copy may first have arrived. False if the lease was lost."""
    return await settle(session, claimed, {"in_flight_at": func.coalesce(T.in_flight_at, now)})


async def release_leases(session: AsyncSession, owner: str | None = None) -> int:
    """Forget the leases of a stopping sender (or every lease: SQLite at start)."""
    held = (T.lease_owner.is_not(None) if owner is None
            else T.lease_owner.startswith(f"{owner}/", autoescape=True))
    result = await session.execute(
        update(TABLE).where(T.status == PENDING, held).values(lease_owner=None, lease_until=None))
    return rowcount(result) or 0


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(T.status, func.count()).group_by(T.status))
    return {status: count for status, count in rows.all()}


async def rows_needing_operator(session: AsyncSession, limit: int = 50) -> list[OutboxMessage]:
    """Dead and unknown-outcome rows, newest first."""
    query = (select(OutboxMessage).where(OutboxMessage.status.in_((DEAD, UNKNOWN)))
             .order_by(OutboxMessage.id.desc()).limit(limit))
    return list((await session.execute(query)).scalars())


async def retry(session: AsyncSession, ids: list[int], now: datetime, *,
                include_dropped: bool = False) -> list[int]:
    """Send dead or unknown rows again (an operator decided it is safe), with fresh attempts;
    the ids of the rows retried. The sender of this process is woken when the unit of work
    commits.

    A row an operator dropped is left alone unless `include_dropped`: someone said it was dealt
    with (sent by hand, say), and a retry asked for before that must not send it after all."""
    retryable = [T.id.in_(ids), T.status.in_((DEAD, UNKNOWN))]
    if not include_dropped:
        retryable.append(~was_dropped())
    result = await session.execute(
        update(TABLE).where(*retryable)
        .values(status=PENDING, attempts=0, next_attempt_at=now, in_flight_at=None,
                lease_owner=None, lease_until=None, finished_at=None, deadline=None)
        .returning(T.id, T.priority))
    retried = result.all()
    _wake_for(session, [priority for _, priority in retried])
    return sorted(row_id for row_id, _ in retried)


DROPPED = "dropped by operator: "  # how the last_error of a row an operator gave up on starts
BEFORE = "; before: "  # after the reason: the error the row had until then


async def drop(session: AsyncSession, ids: list[int], reason: str, now: datetime,
               statuses: tuple[str, ...] = (PENDING, UNKNOWN)) -> list[int]:
    """Give up on rows of `statuses` for good, keeping the operator's reason before the error
    that led here; the ids of the rows dropped. A dead row an operator gave up on already is
    left as it is."""
    note = f"{DROPPED}{reason}"
    error = case((T.last_error.is_(None), literal(note)),
                 else_=literal(f"{note}{BEFORE}") + T.last_error)
    result = await session.execute(
        update(TABLE).where(T.id.in_(ids), T.status.in_(statuses),
                            or_(T.status != DEAD, ~was_dropped()))
        .values(status=DEAD, last_error=func.substr(error, 1, MAX_ERROR_CHARS),
                finished_at=now, lease_owner=None, lease_until=None)
        .returning(T.id))
    return sorted(result.scalars())


def was_dropped() -> Any:
    """The condition "an operator gave this row up" (as opposed to WeCom or the sender)."""
    return func.coalesce(T.last_error, "").startswith(DROPPED)
