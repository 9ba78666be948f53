"""Every console page in Chromium on the data of a small demo run: each answers, shows what the
demo left in the database, has no console error, and is photographed (the README's
screenshots: `SOPBOT_SCREENSHOT_DIR=docs/screenshots pytest tests/browser`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.engine.logs import configure_logging
from app.faces.demo.run import Options, Result, run
from app.faces.demo.workspace import OPERATOR
from app.funnel import steps
from app.groups.models import CustomerGroup
from app.keywords.book import book_for
from app.members.models import Member
from app.verify.models import Verification
from tests.browser.test_console_browser import log_in
from tests.conftest import AES_KEY, REPO, TOKEN, RunningApp, rows_of, serve_app
from tests.demo.test_demo import free_port

# (file name, path, the elements that carry the page's rows; how many the demo's data makes)
PAGES = [
    ("funnel", "/console/funnel?period=30d", "figure.chart-card g[data-step]", len(steps.ORDER)),
    ("reviews", "/console/reviews", "article[data-review]", "pending reviews"),
    ("members", "/console/members", "[data-member]", "members (a page of 50)"),
    ("groups", "/console/groups", "[data-chat]", "groups"),
    ("calendar", "/console/calendar", "[data-plan]", None),
    ("content", "/console/content", "[data-column]", None),
    ("keywords", "/console/keywords", "[data-rule]", "keyword rules"),
    ("rules", "/console/rules", "[data-strike]", None),
    ("koc", "/console/koc", "[data-koc-section]", None),
    ("outbox", "/console/outbox", "[data-kind]", None),
]


async def expected_counts(app: RunningApp) -> dict[str, int]:
    db, flows = app.runtime.db, app.runtime.flows
    verifications = await rows_of(db, Verification)
    return {"pending reviews": sum(v.status == "pending" for v in verifications),
            "members (a page of 50)": min(50, len(await rows_of(db, Member))),
            "groups": len(await rows_of(db, CustomerGroup)),
            "keyword rules": len(book_for(app.runtime.settings.keywords_path,
                                          set(flows.routing.segments)).current().keywords.rules)}


MAX_SHOT_HEIGHT = 1400  # the README shows the top of a long page


async def top_of(page: Any, height: int) -> dict[str, float]:
    whole = await page.evaluate("document.documentElement.scrollHeight")
    return {"x": 0, "y": 0, "width": page.viewport_size["width"], "height": min(whole, height)}


@pytest.fixture
async def demo_console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       ) -> AsyncIterator[tuple[RunningApp, Result]]:
    """A small demo's database, served again (no WeCom calls needed to read it)."""
    monkeypatch.chdir(tmp_path)
    options = Options(members=60, days=2, port=free_port(), seed=3, exit=True,
                      flows=REPO / "sop_flows", keywords=REPO / "keywords.yaml")
    try:
        result = await run(options, out=open(tmp_path / "demo.out", "w"))  # noqa: SIM115
    finally:
        configure_logging("info", "json", secrets=[TOKEN, AES_KEY])
    settings = result.settings.model_copy(update={
        "scheduler": False, "outbox_sender": False, "kf_reader": False, "inbox_worker": False})
    async with serve_app(settings) as app:
        yield app, result


async def test_every_page_renders_the_demo_data_without_errors(
        browser: Any, demo_console: tuple[RunningApp, Result], screenshots: Path) -> None:
    app, result = demo_console
    context = await browser.new_context(viewport={"width": 1280, "height": 900},
                                        base_url=app.base_url)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{m.text} {m.location}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
            if r.status >= 400 else None)
    await log_in(page, OPERATOR, result.password)
    counts = await expected_counts(app)
    for name, path, rows, expected in PAGES:
        response = await page.goto(path)
        assert response is not None and response.status == 200, (name, response)
        shown = await page.locator(rows).count()
        if expected is None:
            assert shown > 0, name  # the plan ahead, the outbox's kinds: some, whatever the day
        else:
            wanted = expected if isinstance(expected, int) else counts[expected]
            assert shown == wanted > 0, (name, shown, wanted)
        await page.screenshot(path=screenshots / f"{name}.png", full_page=True,
                              clip=await top_of(page, MAX_SHOT_HEIGHT))
    # The member who answers others most (the demo's KOC candidate): what they said in groups.
    member_id = await top_answerer(app)
    response = await page.goto(f"/console/members/{member_id}")
    assert response is not None and response.status == 200
    assert await page.locator("tr[data-talk] [data-answers]").count() > 0
    await page.screenshot(path=screenshots / "member.png", full_page=True,
                          clip=await top_of(page, MAX_SHOT_HEIGHT))
    assert problems == []  # nothing blocked by the CSP, no script error, no missing asset


async def top_answerer(app: RunningApp) -> int:
    from sqlalchemy import select

    from app.archive.models import Speaker

    async with app.runtime.db.reader() as session:
        best = await session.scalar(select(Member.id).join(
            Speaker, Speaker.userid == Member.external_userid).order_by(
            Speaker.answers.desc(), Member.id).limit(1))
    assert best is not None
    return best


async def test_the_console_fits_a_phone(browser: Any,
                                        demo_console: tuple[RunningApp, Result],
                                        screenshots: Path) -> None:
    app, result = demo_console
    context = await browser.new_context(viewport={"width": 390, "height": 844},
                                        device_scale_factor=2, is_mobile=True,
                                        has_touch=True, base_url=app.base_url)
    page = await context.new_page()
    await log_in(page, OPERATOR, result.password)
    response = await page.goto("/console/funnel?period=30d")
    assert response is not None and response.status == 200
    # The page itself does not scroll sideways; wide tables scroll inside their own box.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    # ...and it is the report that fits (an error page or an empty one would fit as well).
    charts = page.locator("figure.chart-card")
    assert await charts.count() > 0
    assert await charts.locator("g[data-step]").count() == len(steps.ORDER)
    box = await charts.first.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    await page.screenshot(path=screenshots / "funnel-phone.png", full_page=False)
