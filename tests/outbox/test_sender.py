"""The sender against the fake WeCom: each errcode class, deadlines, rate limits, tokens."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from app.engine.db import utcnow
from app.engine.outbox import sender as sender_module
from app.engine.outbox.models import DEAD, EXPIRED, FAST, PENDING, SENT, UNKNOWN, RateSlot
from app.engine.outbox.outcomes import Outcome
from app.engine.outbox.sender import Planned
from tests.conftest import LogRecorder, wait_until
from tests.fakes.wecom import FakeWeCom
from tests.outbox.conftest import (
    ROBOT_KEY,
    Outbox,
    make_outbox,
    robot_text,
    texts,
    welcome,
)

WELCOME = "externalcontact/send_welcome_msg"
WEBHOOK = "webhook/send"


async def test_sends_each_row_once_and_enqueue_is_idempotent(outbox: Outbox) -> None:
    assert await outbox.enqueue("welcome:WC1", welcome("WC1", "你好，欢迎！"), priority=FAST)
    assert not await outbox.enqueue("welcome:WC1", welcome("WC1", "重复"), priority=FAST)
    await outbox.drain_until_settled()
    await outbox.drain_until_settled()  # nothing left to do: nothing sent again
    (call,) = outbox.fake.calls_to(WELCOME)
    assert call.body == {"welcome_code": "WC1", "text": {"content": "你好，欢迎！"}}
    assert "你好".encode() in call.raw and b"\\u" not in call.raw
    row = await outbox.row("welcome:WC1")
    assert (row.status, row.attempts, row.errcode) == (SENT, 1, 0)
    assert row.finished_at is not None and row.lease_owner is None
    assert outbox.sender.counts == {SENT: 1}


async def test_system_busy_is_retried_with_backoff(outbox: Outbox) -> None:
    outbox.fake.script(WELCOME, -1, -1)
    await outbox.enqueue("welcome:WC2", welcome("WC2"))
    await outbox.drain_until_settled()
    row = await outbox.row("welcome:WC2")
    assert (row.status, row.attempts) == (SENT, 3)
    assert len(outbox.fake.calls_to(WELCOME)) == 3


async def test_final_error_is_recorded_and_never_retried(outbox: Outbox) -> None:
    outbox.fake.script(WELCOME, 41051)
    await outbox.enqueue("welcome:WC3", welcome("WC3"))
    await outbox.drain_until_settled()
    row = await outbox.row("welcome:WC3")
    assert (row.status, row.errcode, row.attempts) == (DEAD, 41051, 1)
    assert "41051" in (row.last_error or "")
    assert len(outbox.fake.calls_to(WELCOME)) == 1


async def test_rate_limited_waits_the_window_without_counting(outbox: Outbox) -> None:
    outbox.fake.script(WEBHOOK, 45009)
    await outbox.enqueue("post:1", robot_text("早上好"))
    before = utcnow()
    await outbox.sender.drain(False)
    row = await outbox.row("post:1")
    assert (row.status, row.errcode, row.attempts) == (PENDING, 45009, 0)
    assert row.next_attempt_at >= before + timedelta(seconds=59)
    async with outbox.db.reader() as session:
        slot = await session.scalar(select(RateSlot.next_at).where(RateSlot.key == "robot:ops"))
    assert slot is not None and slot >= before + timedelta(seconds=59)
    # Nothing else for that robot goes out meanwhile.
    await outbox.enqueue("post:2", robot_text("午安"))
    await outbox.sender.drain(False)
    assert len(outbox.fake.calls_to(WEBHOOK)) == 1
    assert (await outbox.row("post:2")).status == PENDING


async def test_configuration_error_retries_loudly_then_gives_up(
        db_url: str, fake: FakeWeCom, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = LogRecorder()
    monkeypatch.setattr(sender_module, "log", recorder)
    box = make_outbox(db_url, fake, outbox_max_attempts=2)
    try:
        fake.script(WELCOME, 60020, 60020)
        await box.enqueue("welcome:WC4", welcome("WC4"))
        await box.drain_until_settled()
        row = await box.row("welcome:WC4")
        assert (row.status, row.errcode, row.attempts) == (DEAD, 60020, 2)
        assert "gave up after 2 attempts" in (row.last_error or "")
        assert "企业可信IP" in (row.last_error or "")  # the hint reaches the operator
        failures = [(level, fields["outcome"]) for level, event, fields in recorder.lines
                    if event == "outbox_send_failed"]
        assert failures == [("error", "retry"), ("error", "dead")]  # loud, every time
    finally:
        await box.http.aclose()
        await box.db.dispose()


async def test_unknown_outcome_is_never_resent_where_wecom_cannot_deduplicate(
        outbox: Outbox) -> None:
    outbox.fake.script(WEBHOOK, httpx.ReadTimeout("answer lost"))
    outbox.fake.script(WELCOME, httpx.ReadTimeout("answer lost"))
    await outbox.enqueue("post:3", robot_text("今日上新"))
    await outbox.enqueue("welcome:WC5", welcome("WC5"))
    await outbox.drain_until_settled()
    post = await outbox.row("post:3")
    assert post.status == UNKNOWN and "answer" in (post.last_error or "")
    assert len(outbox.fake.calls_to(WEBHOOK)) == 1
    # A welcome code is single use, so sending it again is harmless: retried, then sent.
    assert (await outbox.row("welcome:WC5")).status == SENT
    assert len(outbox.fake.calls_to(WELCOME)) == 2


async def test_a_request_that_never_left_is_retried(outbox: Outbox) -> None:
    outbox.fake.script(WEBHOOK, httpx.ConnectError("refused"))
    await outbox.enqueue("post:4", robot_text("晚安"))
    await outbox.drain_until_settled()
    row = await outbox.row("post:4")
    assert (row.status, row.attempts) == (SENT, 2)
    # The fake notes the refused attempt too; the second is the one WeCom answered.
    assert texts(outbox.fake.calls_to(WEBHOOK)) == ["晚安", "晚安"]
    assert outbox.fake.last(WEBHOOK).query["key"] == ROBOT_KEY


async def test_rows_past_their_deadline_are_not_sent(db_url: str, fake: FakeWeCom) -> None:
    box = make_outbox(db_url, fake, outbox_retry_base_s=5.0, outbox_retry_max_s=5.0)
    try:
        await box.enqueue("welcome:late", welcome("late"), deadline=utcnow() - timedelta(1))
        fake.script(WELCOME, -1)
        await box.enqueue("welcome:busy", welcome("busy"),
                          deadline=utcnow() + timedelta(seconds=2))
        await box.drain_until_settled()
        late, busy = await box.row("welcome:late"), await box.row("welcome:busy")
        assert late.status == EXPIRED and "deadline" in (late.last_error or "")
        # Busy once, and the next try (≥4 s away) would come after its deadline.
        assert (busy.status, busy.errcode) == (EXPIRED, -1)
        assert [c.body["welcome_code"] for c in fake.calls_to(WELCOME)] == ["busy"]
        assert box.sender.counts[EXPIRED] == 2
    finally:
        await box.http.aclose()
        await box.db.dispose()


async def test_robot_rate_limit_spaces_the_sends(db_url: str, fake: FakeWeCom) -> None:
    box = make_outbox(db_url, fake, rate_limits="webhook/send=20/1")  # one per 50 ms
    try:
        sends: list[tuple[datetime, datetime]] = []  # (its slot, when it left)
        request = box.sender._request

        async def noted(item: Planned) -> Outcome:
            assert item.slot is not None
            sends.append((item.slot, box.sender.clock()))
            return await request(item)

        box.sender._request = noted  # type: ignore[method-assign]
        for n in range(8):
            await box.enqueue(f"post:r{n}", robot_text(f"第{n}条"))
        await box.drain_until_settled()
        assert len(sends) == len(fake.calls_to(WEBHOOK)) == 8
        # Slots 50 ms apart, and nothing leaves before its slot. Measured on the slots, not on
        # when the fake saw the calls: a stalled event loop (a busy machine) lets late sends
        # out together, which breaks no rate.
        slots = sorted(slot for slot, _ in sends)
        assert all(later - earlier >= timedelta(milliseconds=49)
                   for earlier, later in zip(slots, slots[1:], strict=False))
        assert all(left >= slot for slot, left in sends)
    finally:
        await box.http.aclose()
        await box.db.dispose()


async def test_an_expired_token_is_refreshed_once_and_the_call_retried(outbox: Outbox) -> None:
    await outbox.enqueue("welcome:t1", welcome("t1"))
    await outbox.drain_until_settled()
    outbox.fake.expire_tokens(42001)
    await outbox.enqueue("welcome:t2", welcome("t2"))
    await outbox.drain_until_settled()
    assert (await outbox.row("welcome:t2")).status == SENT
    assert (await outbox.row("welcome:t2")).attempts == 1  # refreshed within the attempt
    assert len(outbox.fake.calls_to("gettoken")) == 2
    assert outbox.tokens.fetches == 2


async def test_a_welcome_wakes_the_fast_lane_at_once(db_url: str, fake: FakeWeCom) -> None:
    box = make_outbox(db_url, fake, outbox_sweep_s=30.0)
    box.sender.start()
    try:
        await asyncio.sleep(0.1)  # both lanes have looked once and now sleep for 30 s
        await box.enqueue("welcome:fast", welcome("fast"), priority=FAST)

        async def sent() -> bool:
            return (await box.row("welcome:fast")).status == SENT

        await wait_until(sent, 5)
    finally:
        await box.sender.stop()
        await box.http.aclose()
        await box.db.dispose()


async def test_malformed_stored_request_is_dead_not_crashing(outbox: Outbox) -> None:
    await outbox.enqueue("welcome:bad", welcome("bad"))
    async with outbox.db.unit_of_work() as session:
        row = await outbox.row("welcome:bad")
        row.request = '{"welcome_code": 5'
        await session.merge(row)
    await outbox.enqueue("welcome:good", welcome("good"))
    await outbox.drain_until_settled()
    bad = await outbox.row("welcome:bad")
    assert bad.status == DEAD and "cannot rebuild" in (bad.last_error or "")
    assert (await outbox.row("welcome:good")).status == SENT


@pytest.mark.parametrize("errcode", [41050, 84061])
async def test_other_final_codes(outbox: Outbox, errcode: int) -> None:
    outbox.fake.script(WELCOME, errcode)
    await outbox.enqueue(f"welcome:f{errcode}", welcome(f"f{errcode}"))
    await outbox.drain_until_settled()
    row = await outbox.row(f"welcome:f{errcode}")
    assert (row.status, row.errcode) == (DEAD, errcode)


async def test_an_unexpected_error_is_treated_as_an_unknown_outcome(outbox: Outbox) -> None:
    outbox.fake.script(WEBHOOK, RuntimeError("a bug somewhere in the stack"))
    outbox.fake.script(WELCOME, RuntimeError("a bug somewhere in the stack"))
    await outbox.enqueue("post:bug", robot_text("有bug"))
    await outbox.enqueue("welcome:bug", welcome("bug"))
    await outbox.drain_until_settled()
    # The wave did not crash: the post may have left, so it waits for an operator; the
    # welcome (single-use code) was simply sent again.
    assert (await outbox.row("post:bug")).status == UNKNOWN
    assert (await outbox.row("welcome:bug")).status == SENT
    assert len(outbox.fake.calls_to(WEBHOOK)) == 1


async def test_a_row_whose_lease_would_run_out_mid_request_is_given_back(outbox: Outbox) -> None:
    await outbox.enqueue("post:slow", robot_text("慢"))
    outbox.sender.request_span = timedelta(seconds=outbox.sender.lease_s + 1)
    # One wave only: drain would claim the given-back row again and again.
    await outbox.sender.wave(await outbox.sender._claim(False))
    row = await outbox.row("post:slow")
    assert (row.status, row.attempts, row.in_flight_at, row.lease_owner) == (PENDING, 0, None,
                                                                             None)
    assert "lease" in (row.last_error or "")
    assert outbox.fake.calls_to(WEBHOOK) == []


async def test_the_inbox_worker_waits_while_welcomes_wait_for_the_fast_lane(
        outbox: Outbox) -> None:
    sender = outbox.sender
    await outbox.enqueue("welcome:early", welcome("early"), priority=FAST)
    assert sender._fast_idle.is_set()  # no lane running: nothing to wait for
    sender.start()
    await outbox.enqueue("welcome:busy", welcome("busy"), priority=FAST)  # the commit wakes it
    assert not sender._fast_idle.is_set()  # the worker's fast_lane_idle would wait now
    await asyncio.wait_for(sender._fast_idle.wait(), 5.0)  # set again once the lane drained
    assert (await outbox.row("welcome:busy")).status == SENT


async def test_a_failing_settle_hook_loses_only_its_own_work(
        outbox: Outbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hooks run in savepoints: the wave's outcomes, and the other hooks' work, still land."""
    from app.funnel import service as funnel
    from app.funnel.models import FunnelEvent

    async def record_sent(session, claimed, outcome, now) -> None:  # type: ignore[no-untyped-def]
        await funnel.record(session, "welcome_sent", f"hook:{claimed.idempotency_key}", now)
        if claimed.idempotency_key == "welcome:WC-BAD":
            raise RuntimeError("a bug in a hook")

    logs = LogRecorder()
    monkeypatch.setattr(sender_module, "log", logs)
    outbox.sender.on_settled("welcome", record_sent)
    for code in ("WC-OK", "WC-BAD"):
        await outbox.enqueue(f"welcome:{code}", welcome(code), priority=FAST, kind="welcome")
    await outbox.drain_until_settled()
    assert [(await outbox.row(f"welcome:{c}")).status for c in ("WC-OK", "WC-BAD")] == [SENT] * 2
    async with outbox.db.reader() as session:
        keys = list(await session.scalars(select(FunnelEvent.event_key)))
    assert keys == ["hook:welcome:WC-OK"]  # the failing hook's own insert was rolled back
    assert ("exception", "outbox_settle_hook_failed") in [line[:2] for line in logs.lines]
