"""Rows whose fate is uncertain: a stopping sender, lost answers, tokens that fail to come,
lanes of one process racing for a row, and rate-slot locks taken by two replicas at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import httpx

from app.engine.db import utcnow
from app.engine.outbox.models import DEAD, EXPIRED, FAST, PENDING, SENT, UNKNOWN
from app.engine.wecom.api import SendMessage, Text, WebhookSend, WebhookText
from tests.fakes.wecom import Call, FakeWeCom
from tests.outbox.conftest import ROBOT, ROBOT_KEY, Outbox, make_outbox, robot_text, welcome

WELCOME = "externalcontact/send_welcome_msg"
WEBHOOK = "webhook/send"
MESSAGE = "message/send"


def lose_first_answer(fake: FakeWeCom, path: str) -> None:
    """WeCom does the work but the first answer never arrives (a read timeout)."""
    route, lost = fake.routes[path], []

    def lossy(call: Call) -> dict[str, object]:
        answer = route(call)
        if not lost:
            lost.append(call)
            raise httpx.ReadTimeout("answer lost")
        return answer

    fake.routes[path] = lossy


def checked_message(content: str, interval: int | None = None) -> SendMessage:
    return SendMessage(agentid=1000002, touser="u1", msgtype="text", text=Text(content=content),
                       enable_duplicate_check=1, duplicate_check_interval=interval)


async def test_a_stopping_sender_sends_nothing_twice_and_leaves_nothing_unknown(
        db_url: str, fake: FakeWeCom) -> None:
    box = make_outbox(db_url, fake, rate_limits="webhook/send=4/1")
    other = box.new_sender()
    try:
        for n in range(10):
            await box.enqueue(f"post:{n}", robot_text(f"帖子{n}"))
        box.sender.start()
        while not fake.calls_to(WEBHOOK):
            await asyncio.sleep(0.01)
        await box.sender.stop()  # a deploy: mid-wave, rows booked for later slots
        sent_by_first = len(fake.calls_to(WEBHOOK))
        assert sent_by_first < 10
        while await other.drain(False) or any(
                r.status == PENDING for r in (await box.rows()).values()):
            await asyncio.sleep(0.05)
        rows = await box.rows()
        assert Counter(r.status for r in rows.values()) == {SENT: 10}
        assert sorted(c.body["text"]["content"] for c in fake.calls_to(WEBHOOK)) == \
            sorted(f"帖子{n}" for n in range(10))
        assert all(r.attempts == 1 for r in rows.values())  # given back rows: no attempt used
    finally:
        await other.stop()
        await box.http.aclose()
        await box.db.dispose()


async def test_a_welcome_whose_answer_was_lost_is_recorded_as_sent(outbox: Outbox) -> None:
    lose_first_answer(outbox.fake, WELCOME)
    await outbox.enqueue("welcome:L", welcome("L"))
    await outbox.drain_until_settled()
    row = await outbox.row("welcome:L")
    # The resend got 41051 (the code was used, by our own first attempt): delivered.
    assert (row.status, row.errcode, row.attempts) == (SENT, 41051, 2)
    assert "earlier attempt" in (row.last_error or "")
    assert len(outbox.fake.calls_to(WELCOME)) == 2


async def test_41051_without_an_earlier_attempt_is_final(outbox: Outbox) -> None:
    outbox.fake.script(WELCOME, 41051)  # another app welcomed them first
    await outbox.enqueue("welcome:other", welcome("other"))
    await outbox.drain_until_settled()
    assert ((await outbox.row("welcome:other")).status,
            (await outbox.row("welcome:other")).errcode) == (DEAD, 41051)


async def test_a_token_that_cannot_be_fetched_leaves_the_message_unsent_not_unknown(
        outbox: Outbox) -> None:
    outbox.fake.script("gettoken", httpx.ReadTimeout("slow gettoken"))
    await outbox.enqueue("dm:1", SendMessage(agentid=1000002, touser="u1", msgtype="text",
                                             text=Text(content="您好")))
    await outbox.drain_until_settled()
    row = await outbox.row("dm:1")
    assert (row.status, row.attempts) == (SENT, 2)
    assert len(outbox.fake.calls_to(MESSAGE)) == 1


async def test_a_duplicate_checked_message_is_resent_inside_its_window(outbox: Outbox) -> None:
    lose_first_answer(outbox.fake, MESSAGE)
    await outbox.enqueue("dm:checked", checked_message("查重"))
    await outbox.drain_until_settled()
    assert (await outbox.row("dm:checked")).status == SENT
    assert len(outbox.fake.calls_to(MESSAGE)) == 2  # WeCom drops the second copy itself


async def test_a_duplicate_checked_message_is_not_resent_past_its_window(db_url: str,
                                                                        fake: FakeWeCom) -> None:
    lose_first_answer(fake, MESSAGE)
    box = make_outbox(db_url, fake, outbox_retry_base_s=120.0, outbox_retry_max_s=120.0)
    try:
        await box.enqueue("dm:late", checked_message("窗口", interval=60))
        await box.sender.drain(False)  # answer lost: retry in ~2 minutes
        skew = timedelta(seconds=200)
        box.sender.clock = lambda: utcnow() + skew
        await box.sender.drain(False)
        row = await box.row("dm:late")
        assert row.status == UNKNOWN and "duplicate check has lapsed" in (row.last_error or "")
        assert len(fake.calls_to(MESSAGE)) == 1
    finally:
        await box.http.aclose()
        await box.db.dispose()


async def test_a_deadline_passing_while_waiting_for_a_slot_is_not_sent(outbox: Outbox) -> None:
    await outbox.enqueue("welcome:slow", welcome("slow"), priority=FAST,
                         deadline=utcnow() + timedelta(seconds=30))
    batch = await outbox.sender._claim(True)
    planned = [outbox.sender._plan(c) for c in batch]
    await outbox.sender._book(planned)
    skew = timedelta(seconds=31)  # the slot wait and the queue ate the rest of the window
    outbox.sender.clock = lambda: utcnow() + skew
    await asyncio.gather(*(outbox.sender._send(p) for p in planned))
    await outbox.sender._settle(planned)
    assert (await outbox.row("welcome:slow")).status == EXPIRED
    assert outbox.fake.calls_to(WELCOME) == []


async def test_two_lanes_of_one_process_never_settle_each_others_rows(outbox: Outbox) -> None:
    sender = outbox.sender
    await outbox.enqueue("post:x", robot_text("一次"))
    stalled = await sender._claim(False)  # one lane claims, then stalls past its lease
    skew = timedelta(seconds=sender.lease_s + 1)
    sender.clock = lambda: utcnow() + skew
    taken = await sender._claim(False)  # another lane of the same process takes it over
    assert [c.id for c in stalled] == [c.id for c in taken]
    planned = [sender._plan(c) for c in taken]
    await sender._book(planned)
    await sender.wave(stalled)  # the stalled lane wakes: its lease is gone, it changes nothing
    row = await outbox.row("post:x")
    assert row.lease_owner == taken[0].lease and row.in_flight_at is not None
    await asyncio.gather(*(sender._send(p) for p in planned))
    await sender._settle(planned)
    await sender.drain(False)
    assert (await outbox.row("post:x")).status == SENT
    assert len(outbox.fake.calls_to(WEBHOOK)) == 1


async def test_replicas_booking_the_same_rate_keys_in_any_order_do_not_deadlock(
        db_url: str) -> None:
    fake = FakeWeCom(robot_keys=[ROBOT_KEY, "robot-key-b"])
    robots = f"{ROBOT}={ROBOT_KEY},b=robot-key-b"
    first, second = (make_outbox(db_url, fake, robots=robots) for _ in range(2))

    def post(robot: str, n: int) -> WebhookSend:
        return WebhookSend(robot=robot, msgtype="text", text=WebhookText(content=f"{robot}{n}"))

    try:
        await first.enqueue("a1", post(ROBOT, 1))
        await first.enqueue("b1", post("b", 1))
        claims_a = await first.sender._claim(False)
        await first.enqueue("b2", post("b", 2))
        await first.enqueue("a2", post(ROBOT, 2))
        claims_b = await second.sender._claim(False)
        # Batches hold the keys in opposite orders; both book at once (on PostgreSQL their
        # transactions interleave and, locking in batch order, used to deadlock).
        assert [c.rate_key for c in claims_a] == [c.rate_key for c in claims_b][::-1]
        await asyncio.gather(first.sender.wave(claims_a), second.sender.wave(claims_b))
        rows = await first.rows()
        assert Counter(r.status for r in rows.values()) == {SENT: 4}
        assert len(fake.calls_to(WEBHOOK)) == 4
    finally:
        for box in (first, second):
            await box.http.aclose()
            await box.db.dispose()
