"""/console/rules: the group rules' (群规) ledger, the evidence of one strike, the decisions on
strikes (dismiss, confirm) and the praise candidates.

Lists show the messages with phone numbers masked. The evidence view shows one message whole:
it is a POST (the form carries the CSRF token, like every console form), so no link or other
site can open it for an operator, and each look is logged with who looked. Decisions are
POST-redirect-GET: the outcome travels in the flash cookie to the page, filters kept.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from app.archive import rules_review as review
from app.engine.db import utcnow
from app.engine.logs import get_logger
from app.faces.console import flash
from app.faces.console.auth import operator_required
from app.faces.console.pages import rules_view as view
from app.faces.console.params import ROW_ID_MAX, possible_row_id
from app.faces.console.render import render

log = get_logger("sopbot.console")
router = APIRouter()

PAGE = "/console/rules"
FLASH_PAGE = "rules"  # the flash cookie's tag for this page's notices
Operator = Annotated[str, Depends(operator_required)]
FormText = Annotated[str, Form()]
PageNumber = Annotated[int, Query(ge=1, le=100_000)]


@router.get("/rules")
async def rules_page(request: Request, operator: Operator, kind: str = "", status: str = "",
                     group: str = "", page: PageNumber = 1) -> Response:
    form = view.Form(kind, status, group, page)
    outcome = flash.take(request, operator, FLASH_PAGE)
    response = await _page(request, operator, form,
                           notice=view.notice(outcome) if outcome else None)
    flash.clear(request, response)  # shown once
    return response


@router.post("/rules/decide")
async def decide(request: Request, operator: Operator,
                 ids: Annotated[list[int] | None, Form()] = None, action: FormText = "",
                 kind: FormText = "", status: FormText = "", group: FormText = "",
                 page: Annotated[int, Form(ge=1, le=100_000)] = 1) -> Response:
    form = view.Form(kind, status, group, page)
    if action not in review.DECISIONS:
        return await _page(request, operator, form, error="未知的操作。", code=400)
    wanted = sorted({n for n in ids or [] if possible_row_id(n)})
    if not wanted:
        return await _page(request, operator, form, error="请先勾选要处理的记录。", code=400)
    if len(wanted) > view.PAGE_SIZE:
        return await _page(request, operator, form, error=f"一次最多处理 {view.PAGE_SIZE} 条。",
                           code=400)
    async with request.app.state.runtime.db.unit_of_work() as session:
        done = await review.decide(session, wanted, action, operator, utcnow())
    log.info("console_strikes_decided", operator=operator, decision=action, asked=wanted,
             done=done)
    query = urlencode(form.query())
    response = RedirectResponse(f"{PAGE}?{query}" if query else PAGE, 303)
    flash.put(request, response, operator, FLASH_PAGE, {
        "a": action, "done": done, "left": sorted(set(wanted) - set(done))})
    return response


@router.post("/rules/evidence")
async def show_evidence(request: Request, operator: Operator,
                        id: Annotated[int, Form(ge=1, le=ROW_ID_MAX)]) -> Response:
    """One strike's message as it was posted (phone numbers not masked)."""
    runtime = request.app.state.runtime
    async with runtime.db.reader() as session:
        entry = await review.entry(session, id)
    if entry is None:
        return render(request, "rule_evidence.html", status_code=404, row=None)
    log.info("console_evidence_shown", operator=operator, strike=id, chat_id=entry.chat_id)
    async with runtime.db.reader() as session:
        sent = await review.messages_sent(session, [entry])
    return render(request, "rule_evidence.html",
                  row=view.strike_row(entry, runtime.flows, sent.get(entry.id, []), operator),
                  whole=view.evidence(entry, masked=False), msgid=entry.msgid)


async def _page(request: Request, operator: str, form: view.Form, *, code: int = 200,
                **ctx: Any) -> Response:
    runtime = request.app.state.runtime
    if error := form.problem():
        return _render(request, form, 400, error=error, rows=[], total=0, pages=1, groups=[],
                       candidates=[])
    async with runtime.db.reader() as session:
        data = await view.listing(session, form, runtime.flows, operator, utcnow())
    return _render(request, form, code, **(data | ctx))


def _render(request: Request, form: view.Form, code: int, **ctx: Any) -> Response:
    ctx.setdefault("thresholds", request.app.state.runtime.flows.group_rules.thresholds)
    ctx.setdefault("rules", [])
    return render(request, "rules.html", status_code=code, form=form,
                  kinds=view.KIND_LABELS, statuses=view.STATUS_LABELS,
                  decisions=view.DECISION_LABELS, **ctx)
