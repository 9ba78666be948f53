"""/console/outbox: the outbox's counts, and the dead and unknown-outcome rows an operator
retries or gives up on (with a reason), as `sopbot outbox retry|drop` do.

Actions run in the console's own unit of work (runtime.db.unit_of_work), so the sender's
commit hook wakes it for a retried row at once. Each statement is conditional on the row still
being dead or unknown, and a retry never touches a row an operator dropped: an action from a
stale page (another operator acted first) changes nothing and the notice says which rows it
left alone, and why.

Actions are POST-redirect-GET: the outcome travels in the flash cookie to the page, filters
kept (outbox_notices.py), so a browser's refresh loads the page again instead of acting again
(a row retried, and dead again since, is not retried a second time). A form with nothing to do
(no row ticked, no reason) changes nothing and is answered with the page itself, the ticks and
the reason kept.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.engine.db import utcnow
from app.engine.logs import get_logger
from app.engine.outbox import store
from app.engine.outbox.models import DEAD, UNKNOWN
from app.faces.console import flash
from app.faces.console.auth import operator_required
from app.faces.console.pages import outbox_notices as notices
from app.faces.console.pages import outbox_view as view
from app.faces.console.params import MAX_REASON, possible_row_id
from app.faces.console.render import render

log = get_logger("sopbot.console")
router = APIRouter()

PAGE = "/console/outbox"
Operator = Annotated[str, Depends(operator_required)]
Ids = Annotated[list[int] | None, Form()]
FormText = Annotated[str, Form()]


@router.get("/outbox")
async def outbox_page(request: Request, operator: Operator, status: str = "",
                      kind: str = "") -> Response:
    response = await _page(request, status, kind, outcome=notices.take(request, operator))
    flash.clear(request, response)  # shown once
    return response


@router.post("/outbox/retry")
async def retry(request: Request, operator: Operator, ids: Ids = None, status: FormText = "",
                kind: FormText = "") -> Response:
    if error := _refused(ids, "重试"):
        return await _page(request, status, kind, error=error, code=400)
    assert ids is not None  # _refused refuses a form without any
    async with request.app.state.runtime.db.unit_of_work() as session:
        done = await store.retry(session, _storable(ids), utcnow())
    log.info("console_outbox_retried", operator=operator, asked=sorted(ids), retried=done)
    return _acted(request, operator, notices.payload(notices.RETRY, ids, done), status, kind)


@router.post("/outbox/drop")
async def drop(request: Request, operator: Operator, ids: Ids = None, reason: FormText = "",
               status: FormText = "", kind: FormText = "") -> Response:
    reason = " ".join(reason.split())[:MAX_REASON]
    if error := _refused(ids, "放弃"):
        return await _page(request, status, kind, error=error, code=400, reason=reason)
    assert ids is not None  # _refused refuses a form without any
    if not reason:  # kept on the row: whoever looks at it later must learn why
        return await _page(request, status, kind, error="请填写放弃的原因（会记录在消息上）。",
                           code=400, checked=set(ids))
    async with request.app.state.runtime.db.unit_of_work() as session:
        done = await store.drop(session, _storable(ids), f"{reason} (by {operator})",
                                utcnow(), statuses=(DEAD, UNKNOWN))
    log.info("console_outbox_dropped", operator=operator, asked=sorted(ids), dropped=done,
             reason=reason)
    return _acted(request, operator, notices.payload(notices.DROP, ids, done), status, kind)


def _refused(ids: list[int] | None, verb: str) -> str | None:
    """What is wrong with the ticked rows, if anything."""
    if not ids:
        return f"请先勾选要{verb}的消息。"
    # The page lists at most SHOWN rows; a bigger form is not from it (and the notice's ids
    # must fit in a cookie).
    return f"一次最多处理 {view.SHOWN} 条。" if len(set(ids)) > view.SHOWN else None


def _storable(ids: list[int]) -> list[int]:
    return sorted({n for n in ids if possible_row_id(n)})


def _acted(request: Request, operator: str, outcome: dict[str, Any], status: str,
           kind: str) -> Response:
    """Back to the page the action came from, its outcome left in the flash cookie."""
    filters = urlencode({k: v for k, v in (("status", status), ("kind", kind)) if v})
    response = RedirectResponse(f"{PAGE}?{filters}" if filters else PAGE, 303)
    flash.put(request, response, operator, notices.PAGE, outcome)
    return response


async def _page(request: Request, status: str, kind: str, *, code: int = 200,
                outcome: dict[str, Any] | None = None, **ctx: Any) -> Response:
    form = {"status": status, "kind": kind}
    if status not in view.DECIDE:
        return _render(request, form, 400, error="未知的状态筛选。")
    async with request.app.state.runtime.db.reader() as session:
        listing = await view.listing(session, status, kind)
        notice = await notices.text(session, outcome) if outcome else None
    ctx.setdefault("checked", set())
    return _render(request, form, code, notice=notice, **listing, **ctx)


def _render(request: Request, form: dict[str, str], code: int, **ctx: Any) -> Response:
    return render(request, "outbox.html", status_code=code, form=form,
                  statuses=view.STATUS_LABELS, status_choices=view.STATUS_CHOICES,
                  shown=view.SHOWN, max_reason=MAX_REASON, **ctx)
