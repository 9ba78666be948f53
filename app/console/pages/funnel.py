"""/console/funnel: how many reached each step, and the conversion, for a period and a grouping.

The numbers are app/funnel/report.py's (the same as `sopbot funnel`); this page only picks the
period in the operators' calendar and draws them as bars (inline SVG, no script) and a table.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.console.pages.funnel_view import DIMENSION_LABELS, group_views, table_rows
from app.console.periods import CHOICES, PeriodError, parse_period
from app.console.render import render
from app.db import utcnow
from app.funnel import report

router = APIRouter()


@router.get("/funnel")
async def funnel_page(request: Request, period: str = "7d", by: str = "", start: str = "",
                      end: str = "") -> Response:
    services = request.app.state.services
    form = {"period": period, "by": by, "start": start, "end": end}
    try:
        chosen = parse_period(period, start, end, utcnow())
    except PeriodError as exc:
        return _page(request, form, error=str(exc), status_code=400)
    if by not in DIMENSION_LABELS:
        return _page(request, form, error="未知的分组方式。", status_code=400)
    async with services.db.reader() as session:
        groups = await report.gather(session, by or None, chosen.since_at, chosen.until_at)
    views = group_views(groups, by or None, services.flows)
    return _page(request, form, period=chosen, groups=views, rows=table_rows(views))


def _page(request: Request, form: dict[str, str], status_code: int = 200,
          **ctx: object) -> Response:
    return render(request, "funnel.html", status_code=status_code, form=form,
                  periods=CHOICES, dimensions=DIMENSION_LABELS, **ctx)
