"""/console/funnel: how many reached each step, and the conversion, for a period and a grouping.

The numbers are app/funnel/report.py's (the same as `sopbot funnel`); this page only picks the
period in the operators' calendar and draws them as bars (inline SVG, no script), a table, and
a daily trend per step (app/funnel/trend.py, funnel_trend.py) when the period has several days.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.db import utcnow
from app.faces.console.pages.funnel_trend import Trend, days_of, trend_view
from app.faces.console.pages.funnel_view import (
    DIMENSION_LABELS,
    REFERRERS_SHOWN,
    STEP_LABELS,
    GroupView,
    ReferrerRow,
    group_views,
    referrer_rows,
    table_rows,
)
from app.faces.console.periods import CHOICES, Period, PeriodError, parse_period
from app.faces.console.render import render
from app.flows import Flows
from app.funnel import report, trend
from app.koc import funnel_steps

router = APIRouter()


@router.get("/funnel")
async def funnel_page(request: Request, period: str = "7d", by: str = "", start: str = "",
                      end: str = "") -> Response:
    runtime = request.app.state.runtime
    form = {"period": period, "by": by, "start": start, "end": end}
    try:
        chosen = parse_period(period, start, end, utcnow())
    except PeriodError as exc:
        return _page(request, form, error=str(exc), status_code=400)
    if by not in DIMENSION_LABELS:
        return _page(request, form, error="未知的分组方式。", status_code=400)
    async with runtime.db.reader() as session:
        groups = await report.gather(session, by or None, chosen.since_at, chosen.until_at)
        daily = (await trend.daily(session, by or None, chosen.since_at, chosen.until_at)
                 if chosen.first_day < chosen.last_day else None)
        referrers = await _referrers(session, runtime.flows, chosen)
    views = group_views(groups, by or None, runtime.flows)
    return _page(request, form, period=chosen, groups=views, rows=table_rows(views),
                 trend=_trend(daily, chosen, by or None, views), referrers=referrers,
                 referrers_shown=REFERRERS_SHOWN)


async def _referrers(session: AsyncSession, flows: Flows,
                     period: Period) -> list[ReferrerRow] | None:
    """推荐官转化: each recommender's referral steps in the period; None without koc.yaml."""
    if flows.koc is None:
        return None
    rows = await funnel_steps.by_referrer(session, period.since_at, period.until_at,
                                          limit=REFERRERS_SHOWN)
    return referrer_rows(rows, flows.commands.koc.reasons)


def _trend(daily: trend.Daily | None, period: Period, by: str | None,
           views: list[GroupView]) -> Trend | None:
    """The trend under the bar charts' names; None for a single day (a line needs two)."""
    if daily is None:
        return None
    labels = {view.value: view.label for view in views}
    today = period.last_day if period.until_at is None else None  # a day not over yet
    return trend_view(daily, days_of(period.first_day, period.last_day), by, labels,
                      STEP_LABELS, today)


def _page(request: Request, form: dict[str, str], status_code: int = 200,
          **ctx: Any) -> Response:
    return render(request, "funnel.html", status_code=status_code, form=form,
                  periods=CHOICES, dimensions=DIMENSION_LABELS, **ctx)
