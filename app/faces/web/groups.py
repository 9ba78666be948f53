"""GET /api/groups: every live customer group for the platform's server, paged. Same API key as
the rest of /api (`Authorization: Bearer $SOPBOT_API_KEY`; 401 without it, 503 while no key is
configured).

    GET /api/groups?limit=100[&cursor=…][&stage=weak][&segment=online]
    {"groups": [{"chat_id": "wr…", "name": "网店卖家交流群1", "segment": "online",
                 "owner": "zhangsan", "members": 180, "stage": "daily",
                 "filled_at": "2025-03-01T02:00:00Z", "health": 64,
                 "activity": {"source": "archive", "messages_7d": 120, "speakers_7d": 14}}],
     "next_cursor": "wr…"}

Groups come in chat_id order, at most `limit` (1-500, default 100) a page; pass `next_cursor`
back as `cursor` for the next page, until it is null. `stage` is filling (not yet at its ideal
size), strong, daily or weak (a zombie); `filled_at` is null until the group reached its ideal
size. `health` is 0-100 (app/groups/lifecycle.py). `activity` covers the last 7 days (today
included, Asia/Shanghai): `source` "archive" when the chat archive counts the group's messages,
"fallback" otherwise, and then `messages_7d` and `speakers_7d` (distinct customers who spoke)
are null: unknown, never guessed. The console's groups page reads the same function
(app/groups/overview.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from app.engine.db import utcnow
from app.faces.web.apikey import require_api_key
from app.groups.lifecycle import STAGES
from app.groups.overview import BY_CHAT, PAGE_MAX, GroupOverview, overview

router = APIRouter(prefix="/api/groups", dependencies=[Depends(require_api_key)])


class Activity(BaseModel):
    source: Literal["archive", "fallback"]
    messages_7d: int | None
    speakers_7d: int | None


class Group(BaseModel):
    chat_id: str
    name: str
    segment: str | None
    owner: str
    members: int
    stage: Literal["filling", "strong", "daily", "weak"]
    filled_at: datetime | None
    health: int
    activity: Activity

    @classmethod
    def of(cls, row: GroupOverview) -> Group:
        h, a = row.health, row.activity
        return cls.model_validate({
            "chat_id": h.chat_id, "name": h.name, "segment": h.segment, "owner": h.owner,
            "members": h.members, "stage": h.stage, "filled_at": h.filled_at,
            "health": h.score, "activity": {"source": a.source, "messages_7d": a.messages_7d,
                                            "speakers_7d": a.speakers_7d}})


class GroupPage(BaseModel):
    groups: list[Group]
    next_cursor: str | None


@router.get("")
async def list_groups(
        request: Request,
        cursor: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
        stage: str | None = None, segment: str | None = None) -> GroupPage:
    """One page of live groups in chat_id order; `next_cursor` null on the last."""
    runtime = request.app.state.runtime
    if stage is not None and stage not in STAGES:
        raise HTTPException(422, f"stage {stage!r}: one of {', '.join(STAGES)}")
    if segment is not None and segment not in runtime.flows.routing.segments:
        raise HTTPException(422, f"unknown segment {segment!r}")
    async with runtime.db.reader() as session:
        page = await overview(session, runtime.flows, utcnow(), segment=segment, stage=stage,
                              order=BY_CHAT, cursor=cursor, limit=limit)
    return GroupPage(groups=[Group.of(g) for g in page.groups], next_cursor=page.next_cursor)
