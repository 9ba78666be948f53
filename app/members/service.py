"""Changing member rows, always with their history. Functions flush, never commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.members.models import Member, MemberHistory

HISTORY = MemberHistory.__table__

TRACKED = ("staff_userid", "phone", "platform_user_id", "identity_type", "channel", "slot",
           "region", "segment", "group_chat_id", "status", "flag", "link_state")


async def by_external_userid(session: AsyncSession, external_userid: str) -> Member | None:
    return await session.scalar(select(Member).where(Member.external_userid == external_userid))


async def create(session: AsyncSession, now: datetime, source: str, **fields: Any) -> Member:
    """A new member; its initial values are the first entries of its history."""
    member = Member(added_at=now, updated_at=now, **fields)
    session.add(member)
    await session.flush()
    await record_history(session, member, now, source, {k: (None, v) for k, v in fields.items()
                                                 if k in TRACKED and v is not None})
    return member


async def change(session: AsyncSession, member: Member, now: datetime, source: str,
                 **fields: Any) -> dict[str, tuple[Any, Any]]:
    """Set `fields`; the ones that really changed are written to the history and returned."""
    changed = {k: (getattr(member, k), v) for k, v in fields.items() if getattr(member, k) != v}
    for name, (_, new) in changed.items():
        setattr(member, name, new)
    if changed:
        member.updated_at = now
        await session.flush()
        await record_history(session, member, now, source, changed)
    return changed


async def record_history(session: AsyncSession, member: Member, now: datetime, source: str,
                  changes: dict[str, tuple[Any, Any]]) -> None:
    # One multi-row INSERT: cheaper than an ORM object per changed field.
    if changes:
        await session.execute(insert(HISTORY), [
            {"member_id": member.id, "at": now, "field": name, "source": source,
             "old": None if old is None else str(old), "new": None if new is None else str(new)}
            for name, (old, new) in changes.items()])
