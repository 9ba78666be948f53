"""The content queue: operators add items per column (the API, `sopbot content`, the console's
content page), reorder, edit and remove them while queued; a slot takes the first unused one
in queue order for its (slot, day), once (the same key gets the same item back, so a retried
post takes no second one). Functions flush only."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar.flows import CalendarFlows
from app.calendar.models import ContentItem
from app.calendar.planner import render
from app.calendar.posts import Post
from app.engine.db import rowcount

ITEM_BYTES = 2000
TITLE_CHARS = 128
URL_CHARS = 2048
URL = re.compile(r"https?://\S+")


async def add(session: AsyncSession, column: str, title: str, body: str, link: str | None,
              now: datetime, image_url: str | None = None,
              segment: str | None = None) -> ContentItem:
    """A new item at the end of its column's queue (for one segment's slots only, if given)."""
    last = await session.scalar(select(func.max(ContentItem.position))
                                .where(ContentItem.column_name == column))
    item = ContentItem(column_name=column, title=title, body=body, link=link,
                       image_url=image_url, position=(last or 0) + 1, created_at=now,
                       segment=segment)
    session.add(item)
    await session.flush()
    return item


async def queued(session: AsyncSession, column: str, limit: int = 50,
                 segment: str | None = None) -> list[ContentItem]:
    """The column's unused items in queue order (what the next slots will take); with a
    segment, only those its slots may take (its own and every segment's)."""
    query = select(ContentItem).where(ContentItem.column_name == column,
                                      ContentItem.used_at.is_(None))
    if segment is not None:
        query = query.where(or_(ContentItem.segment.is_(None), ContentItem.segment == segment))
    return list(await session.scalars(query.order_by(ContentItem.position, ContentItem.id)
                                      .limit(limit)))


async def counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(ContentItem.column_name, func.count())
                                 .where(ContentItem.used_at.is_(None))
                                 .group_by(ContentItem.column_name))
    return {column: n for column, n in rows}


async def take(session: AsyncSession, column: str, key: str, now: datetime,
               segment: str | None = None) -> ContentItem | None:
    """The item for `key` (slot and day): the one it took already, else the oldest unused
    the segment may take; None when the column is empty."""
    taken = await session.scalar(select(ContentItem).where(ContentItem.used_for == key))
    if taken is not None:
        return taken
    for item in await queued(session, column, limit=5, segment=segment):
        claimed = await session.execute(update(ContentItem).where(
            ContentItem.id == item.id, ContentItem.used_at.is_(None))
            .values(used_at=now, used_for=key))
        if rowcount(claimed) == 1:
            await session.refresh(item)
            return item
    return None


class ItemProblem(ValueError):
    """An item the queue refuses: unknown column, too long, a link that is not http(s)."""


def checked(columns: dict[str, str], column: str, title: str, body: str, link: str | None,
            image_url: str | None) -> tuple[str, str, str, str | None, str | None]:
    """The item's fields, stripped, as the queue takes them (the API, the CLI and the console
    all go through here); ItemProblem says what is wrong, in operators' words."""
    title, body = title.strip(), body.strip()
    link, image_url = (link or "").strip() or None, (image_url or "").strip() or None
    if column not in columns:
        raise ItemProblem(f"unknown column {column!r}; known: {', '.join(columns)}")
    if not title or len(title) > TITLE_CHARS:
        raise ItemProblem(f"a title of 1 to {TITLE_CHARS} characters")
    for name, url in (("link", link), ("image", image_url)):
        if url is not None and (not URL.fullmatch(url) or len(url) > URL_CHARS):
            raise ItemProblem(f"the {name} must be an http(s) address of at most {URL_CHARS}")
    size = len(f"{title}{body}{link or ''}".encode())
    if size > ITEM_BYTES:  # a post is at most 4,000 bytes, greetings and other slots too
        raise ItemProblem(f"title, body and link are {size} bytes; at most {ITEM_BYTES}")
    return column, title, body, link, image_url


async def get(session: AsyncSession, item_id: int) -> ContentItem | None:
    """A queued (unused) item: a used one is history, not edited."""
    return await session.scalar(select(ContentItem).where(
        ContentItem.id == item_id, ContentItem.used_at.is_(None)))


async def edit(session: AsyncSession, item: ContentItem, title: str, body: str,
               link: str | None, image_url: str | None) -> None:
    item.title, item.body, item.link, item.image_url = title, body, link, image_url
    await session.flush()


async def move(session: AsyncSession, item: ContentItem, up: bool) -> bool:
    """Swap the item with its neighbour in the queue; False at the queue's end."""
    order = (ContentItem.position.desc(), ContentItem.id.desc()) if up \
        else (ContentItem.position, ContentItem.id)
    before = (ContentItem.position < item.position) | (
        (ContentItem.position == item.position) & (ContentItem.id < item.id))
    after = (ContentItem.position > item.position) | (
        (ContentItem.position == item.position) & (ContentItem.id > item.id))
    neighbour = await session.scalar(select(ContentItem).where(
        ContentItem.column_name == item.column_name, ContentItem.used_at.is_(None),
        before if up else after).order_by(*order).limit(1))
    if neighbour is None:
        return False
    if neighbour.position == item.position:  # equal positions: make the order explicit
        neighbour.position += -1 if up else 1
    item.position, neighbour.position = neighbour.position, item.position
    await session.flush()
    return True


async def remove(session: AsyncSession, item: ContentItem) -> None:
    await session.delete(item)
    await session.flush()


def preview(calendar: CalendarFlows, item: ContentItem) -> str:
    """The item as a slot of its column posts it (calendar.yaml's slot_template)."""
    fields = {"title": item.title, "body": item.body, "link": item.link or ""}
    post = Post(item.created_at, "preview", 0, column=item.column_name)
    return render(post, calendar.columns, lambda _post: fields, calendar.slot_template) or ""
