"""The groups page in Chromium on a small demo's data: on a 1,280 px laptop screen its table
fits without scrolling sideways (neither the page nor the table's own box)."""

from __future__ import annotations

from typing import Any

from app.faces.demo.run import Result
from app.faces.demo.workspace import OPERATOR
from tests.browser.test_console_browser import log_in
from tests.browser.test_console_pages import demo_console  # noqa: F401 (fixture)
from tests.conftest import RunningApp

LAPTOP = 1280


async def test_the_groups_table_fits_a_1280_px_screen(
        browser: Any, demo_console: tuple[RunningApp, Result]) -> None:  # noqa: F811
    app, result = demo_console
    context = await browser.new_context(viewport={"width": LAPTOP, "height": 900},
                                        base_url=app.base_url)
    page = await context.new_page()
    await log_in(page, OPERATOR, result.password)
    response = await page.goto("/console/groups")
    assert response is not None and response.status == 200
    assert await page.locator("table.ops-groups tr[data-chat]").count() > 0  # the demo's groups
    widths = await page.evaluate("""() => {
        const table = document.querySelector("table.ops-groups");
        return {table: table.scrollWidth, box: table.parentElement.clientWidth,
                page: document.documentElement.scrollWidth};
    }""")
    assert widths["table"] <= widths["box"] <= LAPTOP, widths
    assert widths["page"] <= LAPTOP, widths
