"""/console/members: find members by phone (whole or last 4 digits), directory name,
external_userid or platform user id; one member with their history, verifications and funnel
events. Read-only: members change through the review queue and the handlers, never by hand here.

A phone typed into the search travels in the query string; the service writes no access log
(`sopbot serve` runs uvicorn with access_log=False), so it reaches no log line.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from app.console.auth import operator_required
from app.console.labels import MEMBER_STATUS
from app.console.pages import member_detail, members_view
from app.console.params import RowId
from app.console.render import render

router = APIRouter()

Operator = Annotated[str, Depends(operator_required)]
MAX_QUERY = 64  # the longest key searched (external_userid, platform user id)


@router.get("/members")
async def member_list(request: Request, q: str = "", status: str = "",
                      page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    services = request.app.state.services
    wanted = members_view.Search(q.strip()[:MAX_QUERY], status, page)
    if status and status not in MEMBER_STATUS:
        return _list(request, wanted, error="未知的状态。", status_code=400)
    async with services.db.reader() as session:
        count, rows = await members_view.search(session, wanted, services.flows)
    pages = max(1, -(-count // members_view.PAGE_SIZE))
    return _list(request, wanted, count=count, rows=rows, pages=pages)


@router.get("/members/{member_id}")
async def member_page(member_id: RowId, request: Request, operator: Operator) -> Response:
    services = request.app.state.services
    async with services.db.reader() as session:
        detail = await member_detail.load(session, member_id, services.flows, operator)
    return render(request, "member.html", status_code=200 if detail else 404, detail=detail)


def _list(request: Request, wanted: members_view.Search, status_code: int = 200,
          **ctx: object) -> Response:
    return render(request, "members.html", status_code=status_code, wanted=wanted,
                  statuses=MEMBER_STATUS, **({"count": 0, "rows": [], "pages": 1} | ctx))
