"""/console/members: find members by phone (whole or last 4 digits), directory name,
external_userid or platform user id; one member with their history, verifications and funnel
events. Read-only but for one thing: an operator may unlink a member's phone and platform user
id (the one-to-one record, app/members/links.py), with a reason the history keeps; the rest
changes through the review queue and the handlers, never by hand here.

A phone typed into the search travels in the query string; the service writes no access log
(`sopbot serve` runs uvicorn with access_log=False), so it reaches no log line.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from app.engine.db import utcnow
from app.engine.logs import get_logger
from app.faces.console.auth import operator_required
from app.faces.console.labels import MEMBER_STATUS
from app.faces.console.pages import member_detail, members_view
from app.faces.console.params import MAX_REASON, RowId
from app.faces.console.render import render
from app.members import links
from app.members.models import Member

log = get_logger("sopbot.console")

router = APIRouter()

Operator = Annotated[str, Depends(operator_required)]
MAX_QUERY = 64  # the longest key searched (external_userid, platform user id)


@router.get("/members")
async def member_list(request: Request, q: str = "", status: str = "",
                      page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    runtime = request.app.state.runtime
    wanted = members_view.Search(q.strip()[:MAX_QUERY], status, page)
    if status and status not in MEMBER_STATUS:
        return _list(request, wanted, error="未知的状态。", status_code=400)
    async with runtime.db.reader() as session:
        count, rows = await members_view.search(session, wanted, runtime.flows)
    pages = max(1, -(-count // members_view.PAGE_SIZE))
    return _list(request, wanted, count=count, rows=rows, pages=pages)


@router.get("/members/{member_id}")
async def member_page(member_id: RowId, request: Request, operator: Operator) -> Response:
    return await _member(request, member_id, operator, 200)


@router.post("/members/{member_id}/unlink")
async def unlink_member(member_id: RowId, request: Request, operator: Operator,
                        reason: Annotated[str, Form()] = "") -> Response:
    """Unlink the member's phone and platform user id, e.g. one of two members that shared
    them before migration 0018; the reason goes into the member's history."""
    runtime, reason = request.app.state.runtime, reason.strip()
    if not reason or len(reason) > MAX_REASON:
        return await _member(request, member_id, operator, 400,
                             error=f"解除绑定需要填写原因（{MAX_REASON} 字以内）。")
    async with runtime.db.unit_of_work() as session:
        member = await session.get(Member, member_id, with_for_update=True)
        settled = None if member is None or member.link_state is None else await links.release(
            session, member, utcnow(), f"review:{operator}", reason)
    if settled is None:  # the page is read after the unit of work: SQLite has one writer
        return await _member(request, member_id, operator, 409,
                             error="这位会员没有绑定，未作更改。")
    log.info("console_member_unlinked", member_id=member_id, operator=operator, relinked=settled)
    return RedirectResponse(f"/console/members/{member_id}", 303)


async def _member(request: Request, member_id: int, operator: str, status_code: int,
                  **ctx: Any) -> Response:
    runtime = request.app.state.runtime
    async with runtime.db.reader() as session:
        detail = await member_detail.load(session, member_id, runtime.flows, operator)
    return render(request, "member.html", status_code=status_code if detail else 404,
                  detail=detail, max_reason=MAX_REASON, **ctx)


def _list(request: Request, wanted: members_view.Search, status_code: int = 200,
          **ctx: Any) -> Response:
    empty: dict[str, Any] = {"count": 0, "rows": [], "pages": 1}
    return render(request, "members.html", status_code=status_code, wanted=wanted,
                  statuses=MEMBER_STATUS, **(empty | ctx))
