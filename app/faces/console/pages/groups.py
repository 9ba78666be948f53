"""/console/groups: every customer group, its size against the segment's ideal, stage, health,
last 7 days of activity (with the source of the figures), onboarding day and (for a zombie)
its migration plan; filtered by segment and stage, PAGE_SIZE groups a page. Every console
page's banner naming each segment whose pool has no group with room comes from here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.engine.db import utcnow
from app.faces.console import labels
from app.faces.console.pages import groups_view as view
from app.faces.console.render import render

router = APIRouter()


@router.get("/groups")
async def groups_page(request: Request, segment: str = "", stage: str = "",
                      page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    runtime = request.app.state.runtime
    flows = runtime.flows
    form = {"segment": segment, "stage": stage}
    choices = labels.segment_choices(flows, view.NO_SEGMENT_LABEL)
    error = None
    if segment not in dict(choices):
        error = "未知的分群。"
    elif stage and stage not in view.STAGE_LABELS:
        error = "未知的阶段。"
    if error:
        return _page(request, form, choices, error=error, status_code=400)
    async with runtime.db.reader() as session:
        listing = await view.load(session, flows, utcnow(), segment, stage, page)
    return _page(request, form, choices, listing=listing, rows=listing.rows,
                 counts=listing.counts, total=listing.total, lifecycle=flows.lifecycle,
                 sources=view.SOURCE_LABELS)


def _page(request: Request, form: dict[str, str], choices: list[tuple[str, str]],
          status_code: int = 200, **ctx: Any) -> Response:
    return render(request, "groups.html", status_code=status_code, form=form,
                  segments=choices, stages=view.STAGE_LABELS, **ctx)
