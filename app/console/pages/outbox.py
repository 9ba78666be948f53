"""/console/outbox: the outbox's counts, and the dead and unknown-outcome rows an operator
retries or gives up on (with a reason), as `sopbot outbox retry|drop` do.

Actions run in the console's own unit of work (services.db.unit_of_work), so the sender's
commit hook wakes it for a retried row at once. Each statement is conditional on the row still
being dead or unknown: an action from a stale page (another operator acted first) changes
nothing and the answer says which rows it left alone. The answer is the page itself, rendered
after the action; posting it again finds nothing left to do.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.console.auth import operator_required
from app.console.pages import outbox_view as view
from app.console.render import render
from app.db import utcnow
from app.logs import get_logger
from app.outbox import store
from app.outbox.models import DEAD, UNKNOWN

log = get_logger("sopbot.console")
router = APIRouter()

MAX_REASON = 500
MAX_ID = 2**63 - 1  # BIGINT: a larger id names no row (and would overflow the driver)
Ids = Annotated[list[int] | None, Form()]
FormText = Annotated[str, Form()]


@router.get("/outbox")
async def outbox_page(request: Request, status: str = "", kind: str = "") -> Response:
    return await _page(request, status, kind)


@router.post("/outbox/retry")
async def retry(request: Request, operator: Annotated[str, Depends(operator_required)],
                ids: Ids = None, status: FormText = "", kind: FormText = "") -> Response:
    if not ids:
        return await _page(request, status, kind, error="请先勾选要重试的消息。", code=400)
    async with request.app.state.services.db.unit_of_work() as session:
        done = await store.retry(session, _storable(ids), utcnow())
    log.info("console_outbox_retried", operator=operator, asked=sorted(ids), retried=done)
    notice = f"已重新排队 {len(done)} 条，发送器会立即发送。" if done else "没有重新排队任何消息。"
    return await _page(request, status, kind, notice=notice + _left_alone(ids, done))


@router.post("/outbox/drop")
async def drop(request: Request, operator: Annotated[str, Depends(operator_required)],
               ids: Ids = None, reason: FormText = "", status: FormText = "",
               kind: FormText = "") -> Response:
    reason = " ".join(reason.split())[:MAX_REASON]
    if not ids:
        return await _page(request, status, kind, error="请先勾选要放弃的消息。", code=400,
                           reason=reason)
    if not reason:  # kept on the row: whoever looks at it later must learn why
        return await _page(request, status, kind, error="请填写放弃的原因（会记录在消息上）。",
                           code=400, checked=set(ids))
    async with request.app.state.services.db.unit_of_work() as session:
        done = await store.drop(session, _storable(ids), f"{reason} (by {operator})",
                                utcnow(), statuses=(DEAD, UNKNOWN))
    log.info("console_outbox_dropped", operator=operator, asked=sorted(ids), dropped=done,
             reason=reason)
    notice = f"已放弃 {len(done)} 条，原因已记录。" if done else "没有放弃任何消息。"
    return await _page(request, status, kind, notice=notice + _left_alone(ids, done))


def _storable(ids: list[int]) -> list[int]:
    return sorted({n for n in ids if 0 < n <= MAX_ID})


def _left_alone(asked: list[int], done: list[int]) -> str:
    """Which rows an action found no longer dead or unknown."""
    others = sorted(set(asked) - set(done))
    if not others:
        return ""
    listed = "、".join(f"#{n}" for n in others)
    return f"{listed} 已不是失败或结果未知（可能已被他人处理），未改动。"


async def _page(request: Request, status: str, kind: str, *, code: int = 200,
                **ctx: object) -> Response:
    form = {"status": status, "kind": kind}
    if status not in view.DECIDE:
        return _render(request, form, 400, error="未知的状态筛选。")
    async with request.app.state.services.db.reader() as session:
        counts = await view.counts(session)
        rows, total = await view.to_decide(session, status, kind)
        dropped = await view.dropped(session, kind)
    ctx.setdefault("checked", set())
    return _render(request, form, code, counts=counts, rows=rows, total=total,
                   dropped=dropped, **ctx)


def _render(request: Request, form: dict[str, str], code: int, **ctx: object) -> Response:
    return render(request, "outbox.html", status_code=code, form=form,
                  statuses=view.STATUS_LABELS, kinds=view.KIND_LABELS, shown=view.SHOWN,
                  **ctx)
