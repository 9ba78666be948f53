"""The console in a real browser: a shop owner submits the H5 form on a phone, an operator logs
in on a laptop, approves them in the review queue, sees the funnel chart move, and retries the
staff notice WeCom refused in the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.engine.db import utcnow
from app.engine.outbox.models import OutboxMessage
from app.members import service as members
from app.verify.links import links_for
from tests.conftest import OPERATOR, RunningApp, rows_of, serve_app, wait_until
from tests.console.conftest import PASSWORD, console_settings, give_password
from tests.fakes.wecom import FakeWeCom, error
from tests.verify.conftest import JPEG

STAFF_NOTICE = "message/send"


async def log_in(page: Any, userid: str, password: str) -> None:
    """Open the console: the login form comes first; after it, the funnel."""
    await page.goto("/console")
    assert "/console/login" in page.url
    await page.fill("#userid", userid)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/console/funnel**")


async def bar(page: Any, step: str) -> int:
    """The count a funnel bar shows (the first chart: all channels, or the only one)."""
    await page.goto("/console/funnel?period=7d")
    found = page.locator(f"figure.chart-card g[data-step={step}]").first
    return int(await found.get_attribute("data-count"))


@pytest.fixture
async def console_app(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[RunningApp, FakeWeCom]]:
    wecom = FakeWeCom()
    settings = console_settings(db_url, photo_dir=tmp_path / "photos",
                                agent_secret="agent-secret", outbox_retry_base_s=0.05)
    async with serve_app(settings, wecom=wecom) as app:
        await give_password(app, OPERATOR, PASSWORD)
        yield app, wecom


async def a_member_submits_on_a_phone(browser: Any, app: RunningApp, photo: Path) -> None:
    async with app.runtime.db.unit_of_work() as session:
        await members.create(session, utcnow(), "test", channel="douyin",
                             external_userid="wmBrowser", staff_userid="lisi")
    token = links_for(app.runtime.settings).token("wmBrowser")
    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                      base_url=app.base_url)
    page = await phone.new_page()
    await page.goto(f"/verify/{token}")
    await page.fill("#phone", "13800138000")
    await page.check("input[name=identity_type][value=physical_shop]")
    await page.select_option("#region", "广东")
    await page.set_input_files("#photos", str(photo))
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    assert "审核" in await page.inner_text("body")  # "submitted, under review"
    await phone.close()


async def test_an_operator_approves_sees_the_funnel_move_and_retries_a_refused_notice(
        browser: Any, console_app: tuple[RunningApp, FakeWeCom], tmp_path: Path,
        screenshots: Path) -> None:
    app, wecom = console_app
    photo = tmp_path / "shop.jpg"
    photo.write_bytes(JPEG)
    await a_member_submits_on_a_phone(browser, app, photo)
    # WeCom refuses the staff notice the approval sends: the row goes dead, for the outbox page.
    wecom.script(STAFF_NOTICE, error(81013, "user not found"))

    laptop = await browser.new_context(viewport={"width": 1280, "height": 900},
                                       base_url=app.base_url)
    page = await laptop.new_page()
    page.set_default_timeout(10_000)
    await log_in(page, OPERATOR, PASSWORD)
    routed_before = await bar(page, "routed")

    await page.goto("/console/reviews")
    row = page.locator("[data-review]", has_text="138****8000").first
    await row.locator("button[value=approve]").click()
    await page.wait_for_load_state()
    assert "已通过" in await page.inner_text("body")
    assert await bar(page, "routed") == routed_before + 1
    await page.screenshot(path=screenshots / "funnel-after-approval.png", full_page=True)

    async def notice_dead() -> bool:
        return any(r.status == "dead" for r in await rows_of(app.runtime.db, OutboxMessage))
    await wait_until(notice_dead, 10)
    await page.goto("/console/outbox")
    dead = page.locator("tr[data-status=dead]", has_text=STAFF_NOTICE).first
    await dead.locator("input[name=ids]").check()
    await page.screenshot(path=screenshots / "outbox-dead-row.png", full_page=True)
    await page.click("button:has-text('重试所选')")
    await page.wait_for_load_state()

    async def notice_sent() -> bool:
        return any(r.status == "sent" and r.api == STAFF_NOTICE
                   for r in await rows_of(app.runtime.db, OutboxMessage))
    await wait_until(notice_sent, 10)
    assert len(wecom.calls_to(STAFF_NOTICE)) == 2  # refused once, sent once on the retry
