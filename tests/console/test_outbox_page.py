"""/console/outbox: counts by kind and status, the dead and unknown rows, and an operator's
retry (the row is pending again with fresh attempts, and the running sender sends it at once)
or drop (only with a reason, which is kept); stale or unguarded actions change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import update

from app.engine.db import utcnow
from app.engine.outbox import store
from app.engine.outbox.models import FAST, OutboxMessage
from app.engine.wecom.api import SendWelcomeMsg, Text, WebhookSend, WebhookText
from app.faces.console.flash import FLASH_COOKIE, FLASH_SALT
from tests.conftest import OPERATOR, SECRET_KEY, RunningApp, rows_of, serve_app, wait_until
from tests.console.conftest import (
    OTHER,
    OTHER_PASSWORD,
    PASSWORD,
    Console,
    console_settings,
    give_password,
    logged_in,
    new_client,
)
from tests.console.tables import inputs, table_rows

WEBHOOK = "webhook/send"
ROBOTS = "ops=robot-key-0001"


async def console_on(settings: Any) -> AsyncIterator[Console]:
    async with serve_app(settings, run_worker=False) as app:
        await give_password(app, OPERATOR, PASSWORD)
        await give_password(app, OTHER, OTHER_PASSWORD)
        yield await logged_in(app, app.client)


@pytest.fixture
async def quiet(db_url: str) -> AsyncIterator[Console]:
    """A console on an app whose sender does not run: rows stay as a test leaves them."""
    async for console in console_on(console_settings(db_url, outbox_sender=False)):
        yield console


@pytest.fixture
async def sending(db_url: str) -> AsyncIterator[Console]:
    """A console on an app whose sender runs, but sweeps the table only every 30 s: a row it
    sends sooner, it was woken for."""
    async for console in console_on(console_settings(
            db_url, robots=ROBOTS, outbox_sweep_s=30.0,
            rate_limits="webhook/send=100/1")):  # the real 20/60 spaces two posts by 3 s
        yield console


def robot_text(content: str) -> WebhookSend:
    return WebhookSend(robot="ops", msgtype="text", text=WebhookText(content=content))


async def seed(console: Console) -> dict[str, int]:
    """Five rows as the sender leaves them: key → id."""
    db = console.app.runtime.db
    async with db.unit_of_work() as session:
        await store.enqueue(session, "welcome:W1", SendWelcomeMsg(
            welcome_code="W1", text=Text(content="欢迎")), kind="welcome", priority=FAST)
        for key in ("post:dead", "post:unknown", "post:pending", "post:sent"):
            await store.enqueue(session, key, robot_text(key), kind="calendar_post")
    await settle(console, "welcome:W1", status="dead", errcode=41051, attempts=1,
                 last_error="41051: welcome code already used")
    await settle(console, "post:dead", status="dead", attempts=8,
                 last_error="gave up after 8 attempts: -1 system busy")
    await settle(console, "post:unknown", status="unknown", attempts=2, last_error="no answer")
    await settle(console, "post:sent", status="sent", attempts=1)
    return {row.idempotency_key: row.id for row in await rows_of(db, OutboxMessage)}


async def settle(console: Console, key: str, **values: Any) -> None:
    async with console.app.runtime.db.unit_of_work() as session:
        await session.execute(update(OutboxMessage).where(OutboxMessage.idempotency_key == key)
                              .values(finished_at=utcnow(), **values))


async def state(app: RunningApp) -> dict[str, tuple[Any, ...]]:
    """Every row's status, attempts, error and times, by key."""
    return {r.idempotency_key: (r.status, r.attempts, r.last_error, r.next_attempt_at,
                                r.finished_at)
            for r in await rows_of(app.runtime.db, OutboxMessage)}


def listed(html: str) -> list[int]:
    return [int(r.data["row"]) for r in table_rows(html) if "row" in r.data]


async def act(console: Console, action: str, **data: Any) -> httpx.Response:
    """An action as a browser takes it: the POST, then the page its redirect leads to."""
    posted = await console.client.post(f"/console/outbox/{action}",
                                       data={"csrf_token": console.csrf, **data})
    assert posted.status_code == 303, posted.text
    page = await console.client.get(posted.headers["location"])
    assert page.status_code == 200, page.text
    return page


async def test_counts_and_the_rows_to_decide(quiet: Console) -> None:
    ids = await seed(quiet)
    page = await quiet.client.get("/console/outbox")
    assert page.status_code == 200, page.text
    counts = {r.data["kind"]: r.cells for r in table_rows(page.text) if "kind" in r.data}
    # Columns: kind, pending, sent, dead, expired, unknown, total.
    assert counts["calendar_post"][1:] == ["1", "1", "1", "0", "1", "4"]
    assert counts["welcome"][1:] == ["0", "0", "1", "0", "0", "1"]
    assert counts[""][1:] == ["1", "1", "2", "0", "1", "5"]
    assert listed(page.text) == [ids["post:unknown"], ids["post:dead"], ids["welcome:W1"]]
    [welcome] = table_rows(page.text, row=str(ids["welcome:W1"]))
    assert "好友欢迎语" in welcome.text and "externalcontact/send_welcome_msg" in welcome.text
    assert "41051" in welcome.text and "welcome code already used" in welcome.text
    assert 'name="reason" maxlength="500"' in page.text
    dead = await quiet.client.get("/console/outbox", params={"status": "dead",
                                                             "kind": "calendar_post"})
    assert listed(dead.text) == [ids["post:dead"]]
    assert '<option value="dead" selected>失败</option>' in dead.text  # the filters kept
    assert '<option value="calendar_post" selected>日历发布</option>' in dead.text
    unknown = await quiet.client.get("/console/outbox", params={"status": "unknown"})
    assert listed(unknown.text) == [ids["post:unknown"]]
    bad = await quiet.client.get("/console/outbox", params={"status": "sent"})
    assert bad.status_code == 400 and "未知的状态筛选" in bad.text


async def test_retry_makes_rows_pending_with_fresh_attempts(quiet: Console) -> None:
    ids = await seed(quiet)
    before = await state(quiet.app)
    asked = utcnow()
    done = await act(quiet, "retry", ids=[str(ids["post:dead"]), str(ids["post:unknown"])])
    assert "已重新排队 2 条" in done.text
    after = await state(quiet.app)
    for key in ("post:dead", "post:unknown"):
        status, attempts, _, next_at, finished = after[key]
        assert (status, attempts, finished) == ("pending", 0, None)
        assert asked <= next_at <= utcnow()
    assert {k: v for k, v in after.items() if k not in ("post:dead", "post:unknown")} == {
        k: v for k, v in before.items() if k not in ("post:dead", "post:unknown")}
    assert listed(done.text) == [ids["welcome:W1"]]  # the page as it is now

    # The same form again (a stale page, or another operator's): nothing changes, and it says so.
    stale = await act(quiet, "retry", ids=[str(ids["post:dead"])])
    assert "没有重新排队任何消息" in stale.text
    assert f"#{ids['post:dead']} 已不是失败或结果未知" in stale.text
    # Ids no row has (one beyond what the table can hold) are left alone the same way.
    strange = await act(quiet, "retry", ids=["999", str(2**63)])
    assert f"#999、#{2**63} 已不是失败" in strange.text
    assert await state(quiet.app) == after


async def test_drop_needs_a_reason_and_keeps_it(quiet: Console) -> None:
    ids = await seed(quiet)
    before = await state(quiet.app)
    unknown = str(ids["post:unknown"])
    for reason in ("", "   "):
        refused = await quiet.post("/console/outbox/drop", {"ids": unknown, "reason": reason})
        assert refused.status_code == 400 and "请填写放弃的原因" in refused.text
        # The row stays ticked for the operator to try again.
        assert [(box["value"], "checked" in box) for box in inputs(refused.text, "ids")] == [
            (str(ids[k]), k == "post:unknown") for k in ("post:unknown", "post:dead",
                                                         "welcome:W1")]
    nothing = await quiet.post("/console/outbox/drop", {"reason": "已人工补发"})
    assert nothing.status_code == 400 and "请先勾选" in nothing.text
    many = await quiet.client.post("/console/outbox/drop", data={
        "csrf_token": quiet.csrf, "reason": "已人工补发", "ids": [str(n) for n in range(1, 202)]})
    assert many.status_code == 400 and "一次最多处理 200 条" in many.text  # not the page's form
    assert await state(quiet.app) == before

    done = await act(quiet, "drop", reason=" 已人工补发 ",
                     ids=[unknown, str(ids["welcome:W1"]), str(ids["post:pending"])])
    assert "已放弃 2 条" in done.text and f"#{ids['post:pending']} 已不是失败" in done.text
    after = await state(quiet.app)
    assert after["post:unknown"][:3] == (
        "dead", 2, "dropped by operator: 已人工补发 (by op_alice); before: no answer")
    assert after["welcome:W1"][2] == ("dropped by operator: 已人工补发 (by op_alice); before: "
                                      "41051: welcome code already used")
    assert after["post:pending"] == before["post:pending"]  # pending: not the page's to drop
    assert listed(done.text) == [ids["post:dead"]]
    dropped = {r.data["dropped"]: r for r in table_rows(done.text) if "dropped" in r.data}
    assert set(dropped) == {unknown, str(ids["welcome:W1"])}
    assert "已人工补发 (by op_alice)" in dropped[unknown].text
    assert "no answer" in dropped[unknown].text

    again = await act(quiet, "drop", ids=unknown, reason="再放弃一次")
    assert "没有放弃任何消息" in again.text
    assert f"#{unknown} 已被放弃（已人工补发 (by op_alice)），未改动" in again.text
    assert await state(quiet.app) == after


async def test_a_retry_from_a_stale_page_leaves_a_dropped_row_alone(quiet: Console) -> None:
    """Another operator dropped the row (sent it by hand, say) after this page was loaded: the
    retry must not send it after all."""
    ids = await seed(quiet)
    row = str(ids["post:dead"])
    async with new_client(quiet.app) as browser:  # another operator, on a page of their own
        other = await logged_in(quiet.app, browser, OTHER, OTHER_PASSWORD)
        dropped = await act(other, "drop", ids=row, reason="已人工补发")
    assert "已放弃 1 条" in dropped.text
    before = await state(quiet.app)
    stale = await act(quiet, "retry", ids=row)
    assert "没有重新排队任何消息" in stale.text
    assert f"#{row} 已被放弃（已人工补发 (by {OTHER})），未改动" in stale.text
    assert await state(quiet.app) == before


async def test_a_refresh_after_an_action_does_not_act_again(quiet: Console) -> None:
    """The answer to an action is a redirect to the page, filters kept: a browser's refresh
    loads the page again, and a row retried and dead again since stays dead."""
    ids = await seed(quiet)
    row = str(ids["post:dead"])
    posted = await quiet.client.post("/console/outbox/retry", data={
        "csrf_token": quiet.csrf, "ids": row, "status": "dead", "kind": "calendar_post"})
    assert posted.status_code == 303
    assert posted.headers["location"] == "/console/outbox?status=dead&kind=calendar_post"
    page = await quiet.client.get(posted.headers["location"])
    assert "已重新排队 1 条" in page.text and listed(page.text) == []
    await settle(quiet, "post:dead", status="dead", attempts=1, last_error="84061 again")
    before = await state(quiet.app)
    refreshed = await quiet.client.get(posted.headers["location"])
    assert refreshed.status_code == 200 and listed(refreshed.text) == [ids["post:dead"]]
    assert "data-notice" not in refreshed.text  # the notice shows once
    assert await state(quiet.app) == before


async def test_another_pages_notice_is_not_shown(quiet: Console) -> None:
    ids = await seed(quiet)
    signer = URLSafeTimedSerializer(SECRET_KEY, salt=FLASH_SALT)
    # An outbox-shaped outcome, left for the queue: only the page tag keeps it off this page.
    outcome = {"a": "retry", "done": [ids["post:dead"]], "left": []}
    for page_tag, shown in (("reviews", False), ("outbox", True)):
        quiet.client.cookies.set(FLASH_COOKIE, signer.dumps(
            {"u": OPERATOR, "page": page_tag, "p": outcome}), path="/console")
        page = await quiet.client.get("/console/outbox")
        assert page.status_code == 200 and ("data-notice" in page.text) is shown


async def test_actions_without_the_csrf_token_change_nothing(quiet: Console) -> None:
    ids = await seed(quiet)
    before = await state(quiet.app)
    row = str(ids["post:dead"])
    for path, data in (("/console/outbox/retry", {"ids": row}),
                       ("/console/outbox/drop", {"ids": row, "reason": "不要了"})):
        missing = await quiet.client.post(path, data=data)
        wrong = await quiet.client.post(path, data={**data, "csrf_token": "forged"})
        assert (missing.status_code, wrong.status_code) == (403, 403)
    assert await state(quiet.app) == before


async def test_a_retried_row_is_sent_at_once(sending: Console) -> None:
    fake, db = sending.app.wecom, sending.app.runtime.db
    fake.script(WEBHOOK, 84061)  # a final error: dead after one attempt
    async with db.unit_of_work() as session:
        await store.enqueue(session, "post:robot", robot_text("早上好"), kind="calendar_post")

    async def status_is(wanted: str) -> bool:
        return [r.status for r in await rows_of(db, OutboxMessage)] == [wanted]
    await wait_until(lambda: status_is("dead"), 10)
    [row] = await rows_of(db, OutboxMessage)
    assert (row.attempts, row.errcode) == (1, 84061)
    page = await sending.client.get("/console/outbox")
    assert listed(page.text) == [row.id]

    retried = await act(sending, "retry", ids=str(row.id))
    assert "已重新排队 1 条" in retried.text
    await wait_until(lambda: status_is("sent"), 5)  # long before the 30 s sweep
    [sent] = await rows_of(db, OutboxMessage)
    assert (sent.attempts, sent.errcode) == (1, 0)  # counted afresh
    assert [c.body["text"]["content"] for c in fake.calls_to(WEBHOOK)] == ["早上好", "早上好"]
    assert listed((await sending.client.get("/console/outbox")).text) == []
