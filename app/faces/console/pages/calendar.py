"""/console/calendar: the next 7 days of what will be posted where and through which transport
(with what became of each delivery already due), the deliveries recorded lately with their
outbox and mass-task status, and the owners' confirmation rates."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.engine.db import utcnow
from app.faces.console.pages import calendar_view as view
from app.faces.console.periods import parse_period
from app.faces.console.render import render

router = APIRouter()
PERIODS = (("7d", "近 7 天"), ("30d", "近 30 天"))


@router.get("/calendar")
async def calendar_page(request: Request, segment: str = "", period: str = "7d") -> Response:
    runtime = request.app.state.runtime
    form = {"segment": segment, "period": period}
    known = not segment or segment in runtime.flows.calendar.segments
    if not known or period not in dict(PERIODS):
        return _page(request, form, error="未知的分群或时间范围。", status_code=400)
    now = utcnow()
    since = parse_period(period, None, None, now)
    async with runtime.db.reader() as session:
        shown = await view.load(session, runtime.flows, segment, since.since_at, now)
    return _page(request, form, since=since, **shown)


def _page(request: Request, form: dict[str, str], status_code: int = 200,
          **ctx: Any) -> Response:
    flows = request.app.state.runtime.flows
    labels = flows.routing.segment_labels()
    return render(request, "calendar.html", status_code=status_code, form=form,
                  segments=[(name, labels.get(name, name)) for name in flows.calendar.segments],
                  periods=PERIODS, labels=labels, policy=flows.calendar.daily_cap_policy,
                  **ctx)
