"""POST /api/content: operators (or the app's CMS) queue items for the calendar's columns;
GET /api/content?column=...: what is queued. Same API key as the rest of /api."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from app.calendar import content
from app.engine.db import utcnow
from app.faces.web.apikey import require_api_key

router = APIRouter(prefix="/api/content", dependencies=[Depends(require_api_key)])


class NewItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str = Field(min_length=1, max_length=32)
    title: str = Field(min_length=1, max_length=128)
    body: str = Field("", max_length=3000)
    link: Annotated[str, Field(max_length=2048, pattern=r"^https?://")] | None = None
    image_url: Annotated[str, Field(max_length=2048, pattern=r"^https?://")] | None = None


class Item(BaseModel):
    id: int
    column: str
    title: str
    body: str
    link: str | None
    image_url: str | None = None

    @classmethod
    def of(cls, row: content.ContentItem) -> Item:
        return cls(id=row.id, column=row.column_name, title=row.title, body=row.body,
                   link=row.link, image_url=row.image_url)


@router.post("", status_code=201)
async def add_item(item: NewItem, request: Request) -> Item:
    runtime = request.app.state.runtime
    try:
        column, title, body, link, image = content.checked(
            runtime.flows.calendar.columns, item.column, item.title, item.body, item.link,
            item.image_url)
    except content.ItemProblem as exc:
        raise HTTPException(422, str(exc)) from None
    async with runtime.db.unit_of_work() as session:
        row = await content.add(session, column, title, body, link, utcnow(), image)
    return Item.of(row)


@router.get("")
async def list_items(request: Request, column: str) -> list[Item]:
    async with request.app.state.runtime.db.reader() as session:
        rows = await content.queued(session, column)
    return [Item.of(r) for r in rows]
