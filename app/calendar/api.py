"""POST /api/content: operators (or the app's CMS) queue items for the calendar's columns;
GET /api/content?column=...: what is queued. Same API key as the rest of /api."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from app.apikey import require_api_key
from app.calendar import content
from app.db import utcnow

router = APIRouter(prefix="/api/content", dependencies=[Depends(require_api_key)])
ITEM_BYTES = 2000


class NewItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str = Field(min_length=1, max_length=32)
    title: str = Field(min_length=1, max_length=128)
    body: str = Field("", max_length=3000)
    link: Annotated[str, Field(max_length=2048, pattern=r"^https?://")] | None = None


class Item(BaseModel):
    id: int
    column: str
    title: str
    body: str
    link: str | None


@router.post("", status_code=201)
async def add_item(item: NewItem, request: Request) -> Item:
    services = request.app.state.services
    columns = services.flows.calendar.columns
    if item.column not in columns:
        raise HTTPException(422, f"unknown column {item.column!r}; known: {', '.join(columns)}")
    size = len(f"{item.title}{item.body}{item.link or ''}".encode())
    if size > ITEM_BYTES:  # a post is at most 4,000 bytes, greetings and other slots too
        raise HTTPException(422, f"title, body and link are {size} bytes; at most {ITEM_BYTES}")
    async with services.db.unit_of_work() as session:
        row = await content.add(session, item.column, item.title, item.body, item.link,
                                utcnow())
    return Item(id=row.id, column=row.column_name, title=row.title, body=row.body,
                link=row.link)


@router.get("")
async def list_items(request: Request, column: str) -> list[Item]:
    async with request.app.state.services.db.reader() as session:
        rows = await content.queued(session, column)
    return [Item(id=r.id, column=r.column_name, title=r.title, body=r.body, link=r.link)
            for r in rows]
