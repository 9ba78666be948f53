"""Every console page in Chromium on the data of a small demo run: each answers, shows what the
demo left in the database, has no console error, and is photographed (the README's
screenshots: `SOPBOT_SCREENSHOT_DIR=docs/screenshots pytest tests/browser`)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.demo.run import Options, Result, run
from app.demo.workspace import OPERATOR
from app.logs import configure_logging
from tests.browser.test_console_browser import log_in
from tests.conftest import AES_KEY, REPO, TOKEN, RunningApp, serve_app
from tests.demo.test_demo import free_port

# (file name, path, text the page must show with the demo's data)
PAGES = [
    ("funnel", "/console/funnel?period=30d", "获客漏斗"),
    ("reviews", "/console/reviews", "审核"),
    ("members", "/console/members", "会员"),
    ("groups", "/console/groups", "群"),
    ("calendar", "/console/calendar", "日历"),
    ("keywords", "/console/keywords", "关键词"),
    ("outbox", "/console/outbox", "发件箱"),
]


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
    assert result.password is not None
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
    for name, path, expected in PAGES:
        response = await page.goto(path)
        assert response is not None and response.status == 200, (name, response)
        assert expected in await page.inner_text("body"), name
        await page.screenshot(path=screenshots / f"{name}.png", full_page=True,
                              clip=await top_of(page, MAX_SHOT_HEIGHT))
    assert problems == []  # nothing blocked by the CSP, no script error, no missing asset


async def test_the_console_fits_a_phone(browser: Any,
                                        demo_console: tuple[RunningApp, Result],
                                        screenshots: Path) -> None:
    app, result = demo_console
    assert result.password is not None
    context = await browser.new_context(viewport={"width": 390, "height": 844},
                                        device_scale_factor=2, is_mobile=True,
                                        has_touch=True, base_url=app.base_url)
    page = await context.new_page()
    await log_in(page, OPERATOR, result.password)
    await page.goto("/console/funnel?period=30d")
    # The page itself does not scroll sideways; wide tables scroll inside their own box.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    await page.screenshot(path=screenshots / "funnel-phone.png", full_page=False)
    assert re.search(r"漏斗", await page.inner_text("nav"))
