"""Writing funnel events in the caller's unit of work (flush only), each step once per key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.funnel.models import FunnelEvent
from app.members.models import Member

TABLE = FunnelEvent.__table__
# Every column but the id, always bound (None when not given): one statement, built and
# compiled once per dialect, serves every step (handlers record several per event).
COLUMNS = [c.name for c in TABLE.c if c.name != "id"]
_RECORD = {name: insert(TABLE).on_conflict_do_nothing(index_elements=["event_key"])
           .returning(TABLE.c.id)
           for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}


async def record(session: AsyncSession, step: str, key: str, at: datetime, *,
                 member: Member | None = None, **fields: object) -> bool:
    """Count `step` under the idempotency `key`; False if that key was counted already.

    A member's dimensions (channel, slot, segment, region) are copied as they are now, so a
    report groups each step by what was known when it happened."""
    values: dict[str, object] = dict.fromkeys(COLUMNS) | {
        "step": step, "event_key": key[:128], "at": at}
    if member is not None:
        values |= {"member_id": member.id, "channel": member.channel, "slot": member.slot,
                   "segment": member.segment, "region": member.region,
                   "platform_user_id": member.platform_user_id}
    values |= fields
    statement = _RECORD[session.get_bind().dialect.name]
    result = await session.execute(statement, [values])
    return bool(result.scalars().all())
