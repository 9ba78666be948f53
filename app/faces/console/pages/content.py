"""/console/content: the columns' content queue (《今日上新》, 《嘉宾分享会》, ...) for operators:
queue an item (title, body, link, image address), edit, reorder or remove the ones still
queued, and preview each as its slot will post it (calendar.yaml's slot_template). The same
check as the API and `sopbot content` (app/calendar/content.py `checked`).

Actions are POST-redirect-GET (the outcome in the flash cookie, as on the outbox page); a
form that is refused answers with the page itself, the fields kept. An item a slot has taken
since the page was loaded is history: acting on it changes nothing and the notice says so.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.calendar import content
from app.calendar.models import ContentItem
from app.engine.db import utcnow
from app.engine.logs import get_logger
from app.faces.console import flash
from app.faces.console.auth import operator_required
from app.faces.console.params import possible_row_id
from app.faces.console.render import render

log = get_logger("sopbot.console")
router = APIRouter()

PAGE = "/console/content"
TAG = "content"  # the flash cookie's tag for this page's notices
Operator = Annotated[str, Depends(operator_required)]
FormText = Annotated[str, Form()]
SHOWN = 200  # items of a column listed
NOTICES = {"added": "已加入队列：#{id}。", "edited": "已保存：#{id}。", "up": "已上移：#{id}。",
           "down": "已下移：#{id}。", "removed": "已删除：#{id}。",
           "gone": "#{id} 已被发布取用或已删除，未作更改。", "edge": "#{id} 已在队列的最前或最后。"}
# content.checked's English reasons, in operators' words (by how they start).
PROBLEMS = {"unknown column": "未知的栏目。", "a title": "标题必填，最多 128 个字。",
            "the link": "链接需以 http:// 或 https:// 开头。",
            "the image": "图片地址需以 http:// 或 https:// 开头。",
            "title, body and link": "标题、正文和链接合计超过 2000 字节，请精简。"}


@router.get("/content")
async def content_page(request: Request, operator: Operator, column: str = "") -> Response:
    outcome = flash.take(request, operator, TAG)
    response = await _page(request, column, notice=_notice(outcome))
    flash.clear(request, response)  # shown once
    return response


@router.post("/content/add")
async def add(request: Request, operator: Operator, column: FormText = "", title: FormText = "",
              body: FormText = "", link: FormText = "", image: FormText = "") -> Response:
    columns = request.app.state.runtime.flows.calendar.columns
    try:
        fields = content.checked(columns, column, title, body, link, image)
    except content.ItemProblem as exc:
        kept = {"title": title, "body": body, "link": link, "image": image}
        return await _page(request, column, error=_problem(exc), code=400, kept=kept)
    async with request.app.state.runtime.db.unit_of_work() as session:
        item = await content.add(session, *fields[:4], utcnow(), fields[4])
    log.info("console_content_added", operator=operator, column=column, item_id=item.id)
    return _acted(request, operator, column, "added", item.id)


@router.post("/content/{item_id}/edit")
async def edit(request: Request, operator: Operator, item_id: int, title: FormText = "",
               body: FormText = "", link: FormText = "", image: FormText = "") -> Response:
    async def change(item: ContentItem, session: Any) -> str:
        columns = request.app.state.runtime.flows.calendar.columns
        fields = content.checked(columns, item.column_name, title, body, link, image)
        await content.edit(session, item, *fields[1:])
        return "edited"
    return await _act(request, operator, item_id, change)


@router.post("/content/{item_id}/move")
async def move(request: Request, operator: Operator, item_id: int,
               direction: FormText = "up") -> Response:
    async def change(item: ContentItem, session: Any) -> str:
        up = direction != "down"
        return ("up" if up else "down") if await content.move(session, item, up) else "edge"
    return await _act(request, operator, item_id, change)


@router.post("/content/{item_id}/delete")
async def delete(request: Request, operator: Operator, item_id: int) -> Response:
    async def change(item: ContentItem, session: Any) -> str:
        await content.remove(session, item)
        return "removed"
    return await _act(request, operator, item_id, change)


async def _act(request: Request, operator: str, item_id: int, change: Any) -> Response:
    """Run `change` on a queued item in one unit of work; back to its column's page."""
    column = ""
    try:
        async with request.app.state.runtime.db.unit_of_work() as session:
            item = await content.get(session, item_id) if possible_row_id(item_id) else None
            if item is None:
                return _acted(request, operator, "", "gone", item_id)
            column = item.column_name
            done = await change(item, session)
    except content.ItemProblem as exc:
        return await _page(request, column, error=f"#{item_id}：{_problem(exc)}", code=400)
    log.info("console_content_changed", operator=operator, item_id=item_id, done=done)
    return _acted(request, operator, column, done, item_id)


def _acted(request: Request, operator: str, column: str, done: str, item_id: int) -> Response:
    query = urlencode({"column": column}) if column else ""
    response = RedirectResponse(f"{PAGE}?{query}" if query else PAGE, 303)
    flash.put(request, response, operator, TAG, {"done": done, "id": item_id})
    return response


def _notice(outcome: dict[str, Any] | None) -> str | None:
    if not outcome or outcome.get("done") not in NOTICES:
        return None
    return NOTICES[outcome["done"]].format(id=int(outcome.get("id") or 0))


def _problem(exc: content.ItemProblem) -> str:
    text = str(exc)
    return next((label for start, label in PROBLEMS.items() if text.startswith(start)), text)


async def _page(request: Request, column: str, *, code: int = 200, **ctx: Any) -> Response:
    calendar = request.app.state.runtime.flows.calendar
    if column and column not in calendar.columns:
        return render(request, "content.html", status_code=400, error="未知的栏目。",
                      columns=[], current="", items=[], counts={}, generated=())
    current = column or next(iter(calendar.columns), "")
    async with request.app.state.runtime.db.reader() as session:
        counts = await content.counts(session)
        items = await content.queued(session, current, limit=SHOWN) if current else []
    previews = {i.id: content.preview(calendar, i) for i in items}
    return render(request, "content.html", status_code=code, columns=list(
        calendar.columns.items()), current=current, items=items, counts=counts,
        generated=calendar.generated,
        previews=previews, kept=ctx.pop("kept", {}), **ctx)
