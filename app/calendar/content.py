"""The content queue: operators add items per column; a slot takes the oldest unused one for
its (slot, day), once (the same key gets the same item back, so a retried post takes no
second one). Functions flush only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar.models import ContentItem


async def add(session: AsyncSession, column: str, title: str, body: str, link: str | None,
              now: datetime, image_url: str | None = None) -> ContentItem:
    """A new item at the end of its column's queue."""
    last = await session.scalar(select(func.max(ContentItem.position))
                                .where(ContentItem.column_name == column))
    item = ContentItem(column_name=column, title=title, body=body, link=link,
                       image_url=image_url, position=(last or 0) + 1, created_at=now)
    session.add(item)
    await session.flush()
    return item


async def queued(session: AsyncSession, column: str, limit: int = 50) -> list[ContentItem]:
    """The column's unused items in queue order (what the next slots will take)."""
    return list(await session.scalars(select(ContentItem).where(
        ContentItem.column_name == column, ContentItem.used_at.is_(None))
        .order_by(ContentItem.position, ContentItem.id).limit(limit)))


async def counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(ContentItem.column_name, func.count())
                                 .where(ContentItem.used_at.is_(None))
                                 .group_by(ContentItem.column_name))
    return {column: n for column, n in rows}


async def take(session: AsyncSession, column: str, key: str, now: datetime) -> ContentItem | None:
    """The item for `key` (slot and day): the one it took already, else the oldest unused;
    None when the column is empty."""
    taken = await session.scalar(select(ContentItem).where(ContentItem.used_for == key))
    if taken is not None:
        return taken
    for item in await queued(session, column, limit=5):
        claimed = await session.execute(update(ContentItem).where(
            ContentItem.id == item.id, ContentItem.used_at.is_(None))
            .values(used_at=now, used_for=key))
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            await session.refresh(item)
            return item
    return None
