"""Upserting the platform's user directory and matching phones against it. Flush, never commit.

The platform user id is the key: importing the same rows again changes nothing, a row whose
phone or name changed is updated. A phone already held by another platform user is a conflict
for that row (reported, not moved): two accounts claiming one phone needs a person to look.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory.models import PlatformUser
from app.verify.phone import normalise_phone

CHUNK = 500  # rows looked up per query: keeps IN lists well inside both databases' limits


class UserRow(BaseModel):
    """One directory entry, as a CSV line or an API item gives it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    platform_user_id: str = Field(min_length=1, max_length=64)
    phone: str
    name: str | None = Field(None, max_length=64)

    @field_validator("phone")
    @classmethod
    def _mobile(cls, value: str) -> str:
        phone = normalise_phone(value)
        if phone is None:
            raise ValueError("not a mainland mobile number")
        return phone

    @field_validator("name")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # (index in the input, what is wrong)
    conflicts: list[tuple[int, str]] = field(default_factory=list)


async def upsert(session: AsyncSession, rows: Sequence[UserRow], now: datetime) -> UpsertResult:
    result = UpsertResult()
    for start in range(0, len(rows), CHUNK):
        await _upsert_chunk(session, rows[start:start + CHUNK], start, now, result)
    await session.flush()
    return result


async def _upsert_chunk(session: AsyncSession, rows: Sequence[UserRow], offset: int,
                        now: datetime, result: UpsertResult) -> None:
    by_id, by_phone = await _existing(session, rows)
    for n, row in enumerate(rows, offset):
        holder = by_phone.get(row.phone)
        if holder is not None and holder.platform_user_id != row.platform_user_id:
            result.conflicts.append((n, f"phone already belongs to platform user "
                                        f"{holder.platform_user_id}"))
            continue
        user = by_id.get(row.platform_user_id)
        if user is None:
            user = PlatformUser(platform_user_id=row.platform_user_id, phone=row.phone,
                                name=row.name, imported_at=now)
            session.add(user)
            by_id[user.platform_user_id] = user
            result.created += 1
        elif (user.phone, user.name) != (row.phone, row.name):
            by_phone.pop(user.phone, None)
            user.phone, user.name, user.imported_at = row.phone, row.name, now
            result.updated += 1
            # Written at once: a later row of the chunk may take the phone this one gave up,
            # and the unique index must see the old holder's change first.
            await session.flush()
        else:
            result.unchanged += 1
        by_phone[row.phone] = user


async def _existing(session: AsyncSession, rows: Sequence[UserRow],
                    ) -> tuple[dict[str, PlatformUser], dict[str, PlatformUser]]:
    ids = {row.platform_user_id for row in rows}
    phones = {row.phone for row in rows}
    found = (await session.scalars(select(PlatformUser).where(or_(
        PlatformUser.platform_user_id.in_(ids), PlatformUser.phone.in_(phones))))).all()
    return ({u.platform_user_id: u for u in found}, {u.phone: u for u in found})


async def match_phone(session: AsyncSession, phone: str) -> str | None:
    """The platform user id registered under this (normalised) phone, if any."""
    return await session.scalar(select(PlatformUser.platform_user_id)
                                .where(PlatformUser.phone == phone))
