"""The one-to-one record: a verified member's phone and platform user id are linked to them and
to no other member. The database's partial unique indexes hold it (app/members/models.py);
these functions find who holds what, and move a link with its history. They flush only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.members import service as members
from app.members.models import DUPLICATE, LINK_MOVED, LINKED, UNLINKED, Member


class LinkHeld(RuntimeError):
    """The phone or platform user id is linked to other members: moving the link, or a
    rejection, is a reviewer's decision."""

    def __init__(self, holders: list[int]) -> None:
        super().__init__(f"linked to member(s) {', '.join(f'#{i}' for i in holders)}")
        self.holders = holders


async def holders(session: AsyncSession, phone: str | None, platform_user_id: str | None,
                  excluding: int, lock: bool = False) -> list[Member]:
    """The other members the phone or the platform user id is linked to (a `duplicate` one
    left by migration 0018 counts), oldest first; locked when they are about to change."""
    keys = [Member.phone == phone] if phone else []
    if platform_user_id:
        keys.append(Member.platform_user_id == platform_user_id)
    if not keys:
        return []
    query = (select(Member).where(Member.id != excluding, Member.link_state.is_not(None),
                                  or_(*keys)).order_by(Member.id))
    return list(await session.scalars(query.with_for_update() if lock else query))


async def link(session: AsyncSession, member: Member, now: datetime, source: str,
               move: bool = False) -> list[int]:
    """Link the member's phone and platform user id to them; the members unlinked to do so.
    LinkHeld when another member holds either and `move` is False, or when one took it in a
    concurrent transaction (the unique index says so; PostgreSQL only, SQLite's writes are
    one at a time)."""
    held = await holders(session, member.phone, member.platform_user_id, member.id, lock=True)
    if held and not move:
        raise LinkHeld([m.id for m in held])
    for old in held:
        await unlink(session, old, now, source, f"转移给会员 #{member.id}")
    try:
        async with session.begin_nested():
            await members.change(session, member, now, source, link_state=LINKED)
    except IntegrityError:
        await session.refresh(member)  # the savepoint's rollback expired it
        found = await holders(session, member.phone, member.platform_user_id, member.id)
        raise LinkHeld([m.id for m in found]) from None
    return [m.id for m in held]


async def unlink(session: AsyncSession, member: Member, now: datetime, source: str,
                 why: str, flag: str = LINK_MOVED) -> None:
    """The member no longer holds their phone and platform user id; both stay on their record
    and in its history, with who unlinked them and why, and a flag for the operators."""
    await members.change(session, member, now, source, link_state=None, flag=flag)
    await members.record_history(session, member, now, source, {"unlinked": (None, why)})


async def release(session: AsyncSession, member: Member, now: datetime, source: str,
                  why: str) -> list[int]:
    """An operator unlinks a member by hand (a `duplicate` migration 0018 left, or a wrong
    approval). The `duplicate` members it shared with that now hold their phone and id alone
    are linked again, under the unique indexes; their ids are returned."""
    shared = await holders(session, member.phone, member.platform_user_id, member.id, lock=True)
    await unlink(session, member, now, source, why, flag=UNLINKED)
    settled = []
    for other in shared:
        if other.link_state == DUPLICATE and not await holders(
                session, other.phone, other.platform_user_id, other.id):
            await members.change(session, other, now, source, link_state=LINKED)
            settled.append(other.id)
    return settled
