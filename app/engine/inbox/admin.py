"""Operator views of the inbox for the CLI: counts, parked rows, requeue."""

from __future__ import annotations

from app.engine.db import Database, utcnow
from app.engine.inbox import store


async def show_status(database_url: str) -> str:
    db = Database(database_url)
    try:
        async with db.sessions() as session:
            counts = await store.count_by_status(session)
            failed = await store.failed_rows(session)
    finally:
        await db.dispose()
    lines = ["status   count"]
    lines += [f"{status:<8} {counts.get(status, 0)}" for status in ("pending", "done", "failed")]
    for row in failed:
        lines.append(f"failed #{row.id} {row.kind} attempts={row.attempts} "
                     f"received={row.received_at:%Y-%m-%d %H:%M:%S}Z error={row.last_error}")
    return "\n".join(lines)


async def retry_failed(database_url: str, ids: list[int] | None) -> int:
    db = Database(database_url)
    try:
        async with db.unit_of_work() as session:
            return await store.requeue_failed(session, ids, utcnow())
    finally:
        await db.dispose()
