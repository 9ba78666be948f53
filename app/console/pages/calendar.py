"""/console/calendar: the next 7 days of what will be posted where and through which transport
(with what became of each delivery already due), the deliveries recorded lately with their
outbox and mass-task status, and the owners' confirmation rates."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from app.calendar import tracking
from app.calendar.preview import plan
from app.console.labels import segment_labels
from app.console.pages import calendar_view as view
from app.console.periods import parse_period
from app.console.render import render
from app.console.times import local_day
from app.db import utcnow
from app.groups.models import CustomerGroup

router = APIRouter()
DAYS = 7
PERIODS = (("7d", "近 7 天"), ("30d", "近 30 天"))


@router.get("/calendar")
async def calendar_page(request: Request, segment: str = "", period: str = "7d") -> Response:
    services = request.app.state.services
    calendar, now = services.flows.calendar, utcnow()
    form = {"segment": segment, "period": period}
    if (segment and segment not in calendar.segments) or period not in dict(PERIODS):
        return _page(request, form, error="未知的分群或时间范围。", status_code=400)
    since = parse_period(period, None, None, now)
    today = local_day(now)
    async with services.db.reader() as session:
        names = dict((await session.execute(
            select(CustomerGroup.chat_id, CustomerGroup.name))).all())
        days = await plan(session, calendar, today, DAYS, segment or None,
                          services.flows.onboarding)
        coming = await view.plan_views(session, calendar, days, names, now)
        recent = await view.history(session, calendar, since.since_at, segment)
        owners, posts = view.tally_views(calendar, await tracking.confirmations(
            session, since.since_at), segment_labels(services.flows))
    if segment:
        posts = [p for p in posts if p.tally.segment == segment]
    return _page(request, form, days=coming, history=recent, owners=owners, posts=posts,
                 since=since, last_day=today + timedelta(days=DAYS - 1),
                 shown=view.HISTORY_SHOWN)


def _page(request: Request, form: dict[str, str], status_code: int = 200,
          **ctx: object) -> Response:
    flows = request.app.state.services.flows
    labels = segment_labels(flows)
    return render(request, "calendar.html", status_code=status_code, form=form,
                  segments=[(name, labels.get(name, name)) for name in flows.calendar.segments],
                  periods=PERIODS, labels=labels, policy=flows.calendar.daily_cap_policy,
                  **ctx)
