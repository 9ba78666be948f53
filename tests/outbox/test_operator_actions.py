"""What an operator's retry and drop do to outbox rows (the CLI and the console share them):
which statuses each acts on, what is kept, that a retry wakes the sender and leaves a dropped
row alone unless asked to on purpose."""

from __future__ import annotations

from sqlalchemy import update

from app.engine import wakeups
from app.engine.db import utcnow
from app.engine.outbox import admin, store
from app.engine.outbox.models import DEAD, FAST, NORMAL, PENDING, SENT, UNKNOWN, OutboxMessage
from tests.outbox.conftest import Outbox, robot_text, welcome

WELCOME = "externalcontact/send_welcome_msg"


async def settle_as(outbox: Outbox, key: str, status: str, error: str | None,
                    attempts: int = 3) -> None:
    """Leave a row as the sender leaves one it gave up on (or is unsure about)."""
    async with outbox.db.unit_of_work() as session:
        await session.execute(update(OutboxMessage).where(OutboxMessage.idempotency_key == key)
                              .values(status=status, last_error=error, attempts=attempts,
                                      finished_at=utcnow()))


async def test_retry_makes_dead_and_unknown_rows_pending_and_wakes_the_sender(
        outbox: Outbox) -> None:
    for key, priority in (("post:a", NORMAL), ("welcome:b", FAST), ("post:c", NORMAL)):
        await outbox.enqueue(key, robot_text(key), priority=priority)
    await settle_as(outbox, "post:a", DEAD, "gave up after 3 attempts")
    await settle_as(outbox, "welcome:b", UNKNOWN, "no answer")
    woken: list[dict[str, object]] = []
    outbox.db.commit_hooks.append(lambda info: woken.append(dict(info)))
    rows = await outbox.rows()
    async with outbox.db.unit_of_work() as session:
        retried = await store.retry(session, [r.id for r in rows.values()], utcnow())
    assert retried == [rows["post:a"].id, rows["welcome:b"].id]  # post:c was pending
    after = await outbox.rows()
    assert [(after[k].status, after[k].attempts) for k in ("post:a", "welcome:b")] == [
        (PENDING, 0), (PENDING, 0)]
    assert woken == [{wakeups.OUTBOX_PENDING: FAST}]  # the most urgent of the rows retried


async def test_drop_keeps_the_reason_and_the_error_before_it(outbox: Outbox) -> None:
    for key in ("post:dead", "post:unknown", "post:pending"):
        await outbox.enqueue(key, robot_text(key))
    await settle_as(outbox, "post:dead", DEAD, "41051: already used")
    await settle_as(outbox, "post:unknown", UNKNOWN, "no answer")
    ids = [r.id for r in (await outbox.rows()).values()]
    async with outbox.db.unit_of_work() as session:  # the CLI's default: pending and unknown
        assert len(await store.drop(session, ids, "sent by hand", utcnow())) == 2
    rows = await outbox.rows()
    assert rows["post:unknown"].last_error == (
        "dropped by operator: sent by hand; before: no answer")
    assert rows["post:pending"].last_error == "dropped by operator: sent by hand"
    assert rows["post:dead"].last_error == "41051: already used"
    assert {r.status for r in rows.values()} == {DEAD}


async def test_a_dead_row_is_dropped_once(outbox: Outbox) -> None:
    await outbox.enqueue("post:x", robot_text("x"))
    await settle_as(outbox, "post:x", DEAD, "gave up")
    [row] = (await outbox.rows()).values()
    for reason, expected in (("first", [row.id]), ("second", [])):
        async with outbox.db.unit_of_work() as session:
            dropped = await store.drop(session, [row.id], reason, utcnow(), (DEAD, UNKNOWN))
        assert dropped == expected
    again = await outbox.row("post:x")
    assert again.last_error == "dropped by operator: first; before: gave up"
    # Retried on purpose (as the CLI does), it is pending: no longer one to drop as dead or
    # unknown, but the CLI's drop (pending rows too) takes it, though its last error says it
    # was dropped before.
    async with outbox.db.unit_of_work() as session:
        assert await store.retry(session, [row.id], utcnow(), include_dropped=True) == [row.id]
    async with outbox.db.unit_of_work() as session:
        assert await store.drop(session, [row.id], "third", utcnow(), (DEAD, UNKNOWN)) == []
        assert await store.drop(session, [row.id], "third", utcnow()) == [row.id]


async def test_a_dropped_row_is_retried_only_on_purpose(outbox: Outbox) -> None:
    """An operator said the row was dealt with: a retry asked for before that (a stale console
    page) leaves it alone; `sopbot outbox retry ID` still sends it, as documented."""
    for key in ("post:dropped", "post:dead"):
        await outbox.enqueue(key, robot_text(key))
        await settle_as(outbox, key, DEAD, "gave up")
    rows = await outbox.rows()
    dropped, dead = rows["post:dropped"].id, rows["post:dead"].id
    async with outbox.db.unit_of_work() as session:
        assert await store.drop(session, [dropped], "sent by hand", utcnow(), (DEAD,)) == [dropped]
    async with outbox.db.unit_of_work() as session:
        assert await store.retry(session, [dropped, dead], utcnow()) == [dead]
    left = await outbox.row("post:dropped")
    assert (left.status, left.last_error) == (DEAD, "dropped by operator: sent by hand; "
                                                     "before: gave up")
    assert await admin.retry_rows(outbox.settings.database_url, [dropped]) == 1
    assert (await outbox.row("post:dropped")).status == PENDING


async def test_a_retried_row_is_sent(outbox: Outbox) -> None:
    outbox.fake.script(WELCOME, 41051)
    await outbox.enqueue("welcome:W1", welcome("W1"), priority=FAST)
    await outbox.drain_until_settled()
    row = await outbox.row("welcome:W1")
    assert row.status == DEAD
    async with outbox.db.unit_of_work() as session:
        assert await store.retry(session, [row.id], utcnow()) == [row.id]
    await outbox.drain_until_settled()
    again = await outbox.row("welcome:W1")
    assert (again.status, again.attempts) == (SENT, 1)
    assert len(outbox.fake.calls_to(WELCOME)) == 2
