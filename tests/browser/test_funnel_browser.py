"""The funnel page in Chromium, grouped by channel over a week: labels from funnel.yaml, the
add-friend rate within the app channel, and a daily trend chart per step drawn under the
console's CSP (inline SVG, no script), with nothing blocked and every line visible."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.db import utcnow
from app.faces.console.periods import SHANGHAI
from app.funnel import steps
from app.funnel.service import record
from tests.browser.test_console_browser import console_app, log_in  # noqa: F401 (fixture)
from tests.conftest import OPERATOR, RunningApp
from tests.console.conftest import PASSWORD
from tests.fakes.wecom import FakeWeCom

# Per day of the past week: (app landings, app adds, douyin adds, routed to shop_north).
WEEK = [(30, 12, 8, 5), (42, 15, 6, 7), (25, 9, 10, 4), (50, 20, 7, 9), (38, 14, 12, 6),
        (45, 18, 9, 8), (33, 11, 5, 3)]


async def seed_week(session: AsyncSession) -> None:
    today = utcnow().astimezone(SHANGHAI).replace(hour=10, minute=0, second=0, microsecond=0)
    for n, (landings, app_adds, douyin_adds, routed) in enumerate(WEEK):
        at = today - timedelta(days=len(WEEK) - 1 - n)
        people = ([(steps.LANDING, "app", "home_popup", None)] * landings
                  + [(steps.FRIEND_ADDED, "app", "home_popup", None)] * app_adds
                  + [(steps.FRIEND_ADDED, "douyin", None, None)] * douyin_adds
                  + [(steps.ROUTED, "app", "home_popup", "shop_north")] * routed)
        for k, (step, channel, slot, segment) in enumerate(people):
            await record(session, step, f"{n}:{k}", at, platform_user_id=f"{n}:{k}",
                         channel=channel, slot=slot, segment=segment)


async def test_the_funnel_page_draws_a_daily_trend_per_step(
        browser: Any, console_app: tuple[RunningApp, FakeWeCom],  # noqa: F811
        screenshots: Path) -> None:
    app, _ = console_app
    async with app.runtime.db.unit_of_work() as session:
        await seed_week(session)
    context = await browser.new_context(viewport={"width": 1280, "height": 900},
                                        base_url=app.base_url)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    await log_in(page, OPERATOR, PASSWORD)
    response = await page.goto("/console/funnel?period=7d&by=channel")
    assert response is not None and response.status == 200
    app_bar = page.locator("figure[data-group=app] g[data-step=friend_added]")
    assert await app_bar.get_attribute("data-conversion") == "37.6%"  # 99 adds of 263 landings
    assert "App 内广告位（app）" in await page.inner_text("figure[data-group=app] figcaption")
    charts = page.locator("figure[data-trend]")
    assert [await c.get_attribute("data-trend") for c in await charts.all()] == [
        steps.LANDING, steps.FRIEND_ADDED, steps.ROUTED]  # the steps taken this week
    added = page.locator("figure[data-trend=friend_added]")
    assert await added.is_visible()
    for series in ("app", "douyin"):
        line = added.locator(f"g[data-series={series}] polyline:not(.partial)")
        box = await line.bounding_box()
        assert box is not None and box["width"] > 200, (series, box)  # drawn across the week
        assert await added.locator(f"g[data-series={series}] circle").count() == len(WEEK)
    tip = await added.locator("g[data-series=douyin] circle title").last.text_content()
    assert tip.startswith("今天") and tip.endswith("抖音（douyin）：5 人（截至现在）")
    legend = page.locator(".legend [data-series]")
    assert await legend.count() == 2
    await page.locator("section.trends").screenshot(path=screenshots / "funnel-trend.png")
    segments = await page.goto("/console/funnel?period=7d&by=segment")
    assert segments is not None and segments.status == 200
    north = page.locator("figure[data-group=shop_north] g[data-step=friend_added]")
    assert await north.get_attribute("data-unknown") == "未分群"
    assert problems == []  # nothing blocked by the CSP, no script error
