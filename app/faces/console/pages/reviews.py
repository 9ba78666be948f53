"""/console/reviews: the verification review queue, one review in full, its photos, and the
decisions (approve, or reject with a reason; one or many at once).

Lists show phones masked. The review detail shows the whole number: the reviewer checks it
against the platform's own records when the directory has no match (or a surprising one), and
that needs the digits; it is one submission at a time, behind the login, never cached.
Decisions are POST-redirect-GET: the outcome travels in the flash cookie
(app/faces/console/flash.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.faces.console import flash
from app.faces.console.auth import operator_required
from app.faces.console.pages import review_decisions, reviews_view
from app.faces.console.params import MAX_REASON, RowId
from app.faces.console.render import render
from app.faces.web.verify.reviews import get_photo
from app.verify.models import PENDING

router = APIRouter()
files_router = APIRouter()  # not pages: no banner to read (routes.py)

QUEUE = "/console/reviews"
# Photos are members' data, like the pages: never kept by a cache, never sniffed as HTML.
PHOTO_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

Operator = Annotated[str, Depends(operator_required)]


@router.get("/reviews")
async def review_queue(request: Request, operator: Operator, status: str = PENDING) -> Response:
    runtime = request.app.state.runtime
    if status not in reviews_view.FILTERS:
        return _page(request, "reviews.html", status=PENDING, status_code=400,
                     error="未知的筛选条件。", items=[], count=0)
    async with runtime.db.reader() as session:
        count, items = await reviews_view.queue(session, status, runtime.flows, operator)
        notices = await review_decisions.notices(
            session, review_decisions.take(request, operator), runtime.flows, operator)
    response = _page(request, "reviews.html", status=status, count=count, items=items,
                     notices=notices)
    flash.clear(request, response)  # shown once
    return response


@router.get("/reviews/{review_id}")
async def review_detail(review_id: RowId, request: Request, operator: Operator) -> Response:
    runtime = request.app.state.runtime
    async with runtime.db.reader() as session:
        item = await reviews_view.one(session, review_id, runtime.flows, operator)
    if item is None:
        return _page(request, "review.html", status_code=404, item=None)
    return _page(request, "review.html", item=item)


@files_router.get("/reviews/{review_id}/photos/{n}")
async def review_photo(review_id: RowId, n: int, request: Request) -> Response:
    """The photo as the review API serves it (404 unless a file under photo_dir)."""
    response = await get_photo(review_id, n, request)
    response.headers.update(PHOTO_HEADERS)
    return response


@router.post("/reviews/decide")
async def decide_reviews(request: Request, operator: Operator,
                         ids: Annotated[list[int] | None, Form()] = None,
                         action: Annotated[str, Form()] = "",
                         reason: Annotated[str, Form()] = "",
                         note: Annotated[str, Form()] = "") -> Response:
    runtime = request.app.state.runtime
    decision = review_decisions.parse(action, ids or [], reason, note, runtime.flows)
    if isinstance(decision, str):
        payload = review_decisions.refusal(decision)
    else:
        payload = (await review_decisions.run(runtime, decision, operator)).payload()
    response = RedirectResponse(QUEUE, 303)
    flash.put(request, response, operator, review_decisions.PAGE, payload)
    return response


def _page(request: Request, template: str, status_code: int = 200, **ctx: Any) -> Response:
    return render(request, template, status_code=status_code, filters=reviews_view.FILTERS,
                  reasons=request.app.state.runtime.flows.verify.review_reasons,
                  max_reason=MAX_REASON, **ctx)
