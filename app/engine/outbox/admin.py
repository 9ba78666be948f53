"""Operator views of the outbox for the CLI: counts, rows needing a decision, retry, drop."""

from __future__ import annotations

from app.engine.db import Database, utcnow
from app.engine.outbox import store
from app.engine.outbox.models import DEAD, EXPIRED, PENDING, SENT, UNKNOWN


async def show_status(database_url: str) -> str:
    db = Database(database_url)
    try:
        async with db.reader() as session:
            counts = await store.count_by_status(session)
            rows = await store.rows_needing_operator(session)
    finally:
        await db.dispose()
    lines = ["status   count"]
    lines += [f"{status:<8} {counts.get(status, 0)}"
              for status in (PENDING, SENT, DEAD, EXPIRED, UNKNOWN)]
    for row in rows:
        errcode = "" if row.errcode is None else f" errcode={row.errcode}"
        lines.append(f"{row.status} #{row.id} {row.kind} {row.api} key={row.idempotency_key} "
                     f"attempts={row.attempts}{errcode} error={row.last_error}")
    return "\n".join(lines)


async def retry_rows(database_url: str, ids: list[int]) -> int:
    db = Database(database_url)
    try:
        async with db.unit_of_work() as session:
            # Ids typed on purpose, from `outbox status`, which lists dropped rows too: the CLI
            # is how an operator sends a dropped row after all (the console never does).
            return len(await store.retry(session, ids, utcnow(), include_dropped=True))
    finally:
        await db.dispose()


async def drop_rows(database_url: str, ids: list[int], reason: str) -> int:
    db = Database(database_url)
    try:
        async with db.unit_of_work() as session:
            return len(await store.drop(session, ids, reason, utcnow()))
    finally:
        await db.dispose()
