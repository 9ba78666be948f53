"""Uncertain means ask, not give up: a row an earlier attempt may have delivered (its sender
died with the request on the wire) is sent again while a copy's answer can still tell, past its
deadline too, and is `unknown` (never `expired`) once nobody can tell."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.engine.db import utcnow
from app.engine.outbox import store
from app.engine.outbox.models import EXPIRED, SENT, UNKNOWN
from app.engine.outbox.sender import OutboxSender
from tests.outbox.conftest import Outbox, robot_text, welcome

WELCOME = "externalcontact/send_welcome_msg"
WEBHOOK = "webhook/send"
DEADLINE = timedelta(seconds=18)  # as handlers/welcome.py gives a welcome


async def died_with_it_on_the_wire(outbox: Outbox, key: str) -> None:
    """Another sender claimed the row and marked its request in flight, then died: its lease
    is gone (a dead process's claims are free at once), its in-flight mark stays."""
    dead = outbox.new_sender()
    [claimed] = [c for c in await dead._claim(fast=True) + await dead._claim(fast=False)
                 if c.idempotency_key == key]
    await dead._book([dead._plan(claimed)])
    async with outbox.db.unit_of_work() as session:
        await store.release_leases(session, dead.owner)
    await dead.liveness.close()


async def welcome_on_the_wire(outbox: Outbox, code: str) -> datetime:
    """A welcome queued now with its usual deadline, whose sender then died with it on the
    wire; when it was queued."""
    made = utcnow()
    await outbox.enqueue(f"welcome:{code}", welcome(code), kind="welcome", priority=0,
                         deadline=made + DEADLINE)
    await died_with_it_on_the_wire(outbox, f"welcome:{code}")
    return made


def at(sender: OutboxSender, moment: datetime) -> None:
    sender.clock = lambda: moment


async def test_a_welcome_past_its_deadline_is_asked_about_while_its_code_lives(
        outbox: Outbox) -> None:
    made = await welcome_on_the_wire(outbox, "w1")
    outbox.fake.script(WELCOME, 41051)  # the dead sender's copy had arrived
    at(outbox.sender, made + timedelta(seconds=19))  # past the deadline, inside the 20 s
    await outbox.sender.drain(True)
    row = await outbox.row("welcome:w1")
    assert (row.status, row.errcode) == (SENT, 41051)
    assert [c.body["welcome_code"] for c in outbox.fake.calls_to(WELCOME)] == ["w1"]


async def test_a_resend_that_delivers_is_sent(outbox: Outbox) -> None:
    made = await welcome_on_the_wire(outbox, "w2")  # its copy never arrived
    at(outbox.sender, made + timedelta(seconds=19))
    await outbox.sender.drain(True)
    row = await outbox.row("welcome:w2")
    assert (row.status, row.errcode) == (SENT, 0)


async def test_past_its_codes_life_a_maybe_delivered_welcome_is_unknown_not_expired(
        outbox: Outbox) -> None:
    made = await welcome_on_the_wire(outbox, "w3")
    at(outbox.sender, made + timedelta(seconds=25))
    await outbox.sender.drain(True)
    row = await outbox.row("welcome:w3")
    assert row.status == UNKNOWN
    assert "code is past its life" in (row.last_error or "")
    assert outbox.fake.calls_to(WELCOME) == []  # no copy sent: its answer could tell nothing


async def test_a_code_gone_answer_after_a_lost_one_is_unknown_not_dead(outbox: Outbox) -> None:
    made = await welcome_on_the_wire(outbox, "w4")
    outbox.fake.script(WELCOME, 41050)  # WeCom's clock ran ahead: the code is gone
    at(outbox.sender, made + timedelta(seconds=5))
    await outbox.sender.drain(True)
    row = await outbox.row("welcome:w4")
    assert (row.status, row.errcode) == (UNKNOWN, None)


async def test_a_welcome_never_sent_still_expires(outbox: Outbox) -> None:
    made = utcnow()
    await outbox.enqueue("welcome:w5", welcome("w5"), kind="welcome", priority=0,
                         deadline=made + DEADLINE)
    at(outbox.sender, made + timedelta(seconds=19))
    await outbox.sender.drain(True)
    assert (await outbox.row("welcome:w5")).status == EXPIRED
    assert outbox.fake.calls_to(WELCOME) == []


async def test_a_maybe_delivered_post_past_its_deadline_is_unknown_not_expired(
        outbox: Outbox) -> None:
    """A robot post has no duplicate answer: resending could double it, and past its deadline
    it may still have arrived."""
    made = utcnow()
    await outbox.enqueue("post:p1", robot_text("早安"), deadline=made + timedelta(minutes=5))
    await died_with_it_on_the_wire(outbox, "post:p1")
    at(outbox.sender, made + timedelta(minutes=10))
    await outbox.sender.drain(False)
    assert (await outbox.row("post:p1")).status == UNKNOWN
    assert outbox.fake.calls_to(WEBHOOK) == []
