"""/console/keywords: how often each keyword rule answered in a period, and the questions no
rule answered (repeated ones counted together), per segment or for all. With the chat archive,
the rules' hits in customer groups and the groups' hot unanswered questions with suggested
rules; without it, a line saying the archive is not configured."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.engine.db import utcnow
from app.faces.console import labels
from app.faces.console.pages import keywords_view as view
from app.faces.console.periods import CHOICES, PeriodError, parse_period
from app.faces.console.render import render
from app.keywords.book import book_for

router = APIRouter()


@router.get("/keywords")
async def keywords_page(request: Request, period: str = "7d", start: str = "", end: str = "",
                        segment: str = "", order: str = "recent") -> Response:
    runtime = request.app.state.runtime
    form = {"period": period, "start": start, "end": end, "segment": segment, "order": order}
    segments = labels.segment_choices(runtime.flows, "未分群的客户")
    try:
        chosen = parse_period(period, start, end, utcnow())
    except PeriodError as exc:
        return _page(request, form, segments, error=str(exc), status_code=400)
    if segment not in dict(segments) or order not in view.ORDERS:
        return _page(request, form, segments, error="未知的分群或排序。", status_code=400)
    # The service's own book (loaded at start, reloaded when the file changes).
    loaded = book_for(runtime.settings.keywords_path, set(runtime.flows.routing.segments)).current()
    window = runtime.flows.group_rules.questions.answer_within_min
    async with runtime.db.reader() as session:
        rules = await view.rule_rows(session, loaded.keywords, chosen, segment)
        questions, asked = await view.questions(session, chosen, segment, order)
        groups = await view.group_section(session, loaded.matcher, chosen, segment, utcnow(),
                                          window, runtime.flows.routing.segment_labels())
        if groups is not None:
            rules = await view.with_group_hits(session, rules, chosen, segment)
    hits = sum(rule.hits for rule in rules)
    return _page(request, form, segments, chosen=chosen, rules=rules, questions=questions,
                 hits=hits, asked=asked, answered=_share(hits, asked),
                 read_limit=view.QUESTIONS_READ, groups=groups, window=window)


def _share(hits: int, asked: int) -> str:
    return f"{hits / (hits + asked):.1%}" if hits + asked else "—"


def _page(request: Request, form: dict[str, str], segments: list[tuple[str, str]],
          status_code: int = 200, **ctx: Any) -> Response:
    return render(request, "keywords.html", status_code=status_code, form=form,
                  periods=CHOICES, segments=segments, orders=view.ORDERS,
                  segment_labels=request.app.state.runtime.flows.routing.segment_labels(), **ctx)
