"""The groups page in Chromium on a small demo's data: on a 1,280 px laptop screen its table
fits without scrolling sideways (neither the page nor the table's own box), with the activity
column in both of its forms (the archive's figures, large ones too, and the fallback's label)
and the owners' WeCom figures below."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select

from app.archive.models import ArchiveReader, GroupActivityDay, OwnerGroupStat, SpeakerDay
from app.engine.db import utcnow
from app.faces.demo.run import Result
from app.faces.demo.workspace import OPERATOR
from app.groups.models import CustomerGroup
from tests.browser.test_console_browser import log_in
from tests.browser.test_console_pages import demo_console  # noqa: F401 (fixture)
from tests.conftest import RunningApp

LAPTOP = 1280
SHOT = os.environ.get("SOPBOT_GROUPS_SHOT")  # a screenshot of the busy page, when set


async def test_the_groups_table_fits_a_1280_px_screen(
        browser: Any, demo_console: tuple[RunningApp, Result]) -> None:  # noqa: F811
    app, result = demo_console
    context = await browser.new_context(viewport={"width": LAPTOP, "height": 900},
                                        base_url=app.base_url)
    page = await context.new_page()
    await log_in(page, OPERATOR, result.password)
    await fits(page)
    await busy_archive(app)
    await fits(page)
    assert await page.locator('td[data-source="archive"]').count() > 0
    assert await page.locator('td[data-source="fallback"]').count() > 0
    assert await page.locator("table.ops-owner-stats tr[data-owner]").count() > 0
    if SHOT:
        await page.screenshot(path=SHOT, full_page=True)


async def fits(page: Any) -> None:
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


async def busy_archive(app: RunningApp) -> None:
    """The archive counted every other group's busy week; the rest it never saw (their
    owners' WeCom figures stored)."""
    now = utcnow()
    async with app.runtime.db.unit_of_work() as session:
        if await session.scalar(select(ArchiveReader.id)) is None:
            session.add(ArchiveReader(corp_id="wwdemo"))
        groups = list(await session.scalars(select(CustomerGroup).order_by(CustomerGroup.id)))
        for table in (GroupActivityDay, SpeakerDay):  # the demo's own figures make way
            await session.execute(delete(table))
        for group in groups[::2]:
            for d in range(7):
                day = (now - timedelta(days=d)).date()
                session.add(GroupActivityDay(chat_id=group.chat_id, day=day, messages=12345,
                                             customer_messages=11000, staff_messages=1345,
                                             speakers=150))
                session.add(SpeakerDay(chat_id=group.chat_id, day=day,
                                       userid=f"wm{group.chat_id}", messages=11000))
        for owner in {g.owner for g in groups[1::2]}:
            session.add(OwnerGroupStat(owner=owner, day=(now - timedelta(days=1)).date(),
                                       chat_total=123, chat_has_msg=99, member_total=24600,
                                       member_has_msg=1234, msg_total=98765,
                                       new_member_cnt=321))
