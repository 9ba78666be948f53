"""The inbox at its edges: slow and hanging handlers, late replies, duplicates mid-handling,
shutdown mid-handler, dead workers' leases and payloads that kill the process."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from sqlalchemy import select, text, update

from app.engine.bot.context import Ctx
from app.engine.bot.router import Router
from app.engine.config import Settings
from app.engine.db import utcnow
from app.engine.inbox import store
from app.engine.inbox.models import InboxEvent
from app.engine.liveness import Liveness
from app.engine.wecom.events import ExternalContactAdded, TextMessage
from tests.conftest import CORP_ID, OPERATOR, RunningApp, make_settings, serve_app, wait_until
from tests.fakes import payloads


async def rows(app: RunningApp) -> list[InboxEvent]:
    async with app.runtime.db.reader() as session:
        return list((await session.execute(select(InboxEvent).order_by(InboxEvent.id))).scalars())


def gated_reply_router(gate: asyncio.Event, calls: list[str]) -> Router:
    async def reply_when_released(event: TextMessage, ctx: Ctx) -> None:
        """Test rule: answer a text after the test opens the gate."""
        calls.append(event.msg_id)
        await gate.wait()
        ctx.reply_text(event.from_user_name, f"echo {event.content}")

    router = Router("test", partial=True)  # its own handlers: no behaviour's intake
    router.add(TextMessage, reply_when_released)
    return router


async def test_duplicate_during_handling_waits_and_gets_the_same_reply(db_url: str) -> None:
    gate, calls = asyncio.Event(), []
    settings = make_settings(db_url, reply_wait_ms=3000)
    async with serve_app(settings, router=gated_reply_router(gate, calls)) as app:
        plaintext = payloads.text_message("你好", from_user=OPERATOR, corp_id=CORP_ID)
        first = asyncio.create_task(app.post_callback(plaintext))
        await wait_until(lambda: _true(bool(calls)), 5)
        second = asyncio.create_task(app.post_callback(plaintext))
        await asyncio.sleep(0.2)
        gate.set()
        answers = [await first, await second]
        replies = [app.crypto.decrypt_reply(a.content) for a in answers]
        assert all("echo 你好" in r for r in replies)
        assert len(calls) == 1
        [row] = await rows(app)
        assert (row.status, row.attempts) == ("done", 1)


async def _true(value: bool) -> bool:
    return value


async def test_late_reply_answers_empty_then_goes_out_as_an_app_message(
        db_url: str, capsys) -> None:
    gate, calls = asyncio.Event(), []
    settings = make_settings(db_url, reply_wait_ms=100, agent_secret="agent-secret")
    async with serve_app(settings, router=gated_reply_router(gate, calls)) as app:
        response = await app.post_callback(
            payloads.text_message("slow", from_user=OPERATOR, corp_id=CORP_ID))
        assert response.status_code == 200 and response.content == b""
        gate.set()
        await app.idle()
        [row] = await rows(app)
        assert row.status == "done" and "echo slow" in (row.reply or "")
        await wait_until(lambda: _true(bool(app.wecom.calls_to("message/send"))), 5)
        [sent] = app.wecom.calls_to("message/send")
        assert sent.body == {"msgtype": "text", "text": {"content": "echo slow"},
                             "agentid": 1000002, "touser": OPERATOR}
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()
              if line.startswith("{")]
    assert "passive_reply_missed" in events


def hanging_router(db_is_pg: bool) -> Router:
    async def hang(event: ExternalContactAdded, ctx: Ctx) -> None:
        """Test rule: hang in the database (PostgreSQL) or in Python (SQLite)."""
        if event.external_user_id.startswith("wmHANG"):
            if db_is_pg:
                await ctx.session.execute(text("SELECT pg_sleep(30)"))
            await asyncio.sleep(30)

    router = Router("test", partial=True)  # its own handlers: no behaviour's intake
    router.add(ExternalContactAdded, hang)
    return router


async def test_hanging_handler_times_out_is_counted_and_others_flow(db_url: str) -> None:
    settings = make_settings(db_url, handler_timeout_s=0.3, inbox_max_attempts=2)
    is_pg = db_url.startswith("postgresql")
    async with serve_app(settings, router=hanging_router(is_pg)) as app:
        await app.post_callback(payloads.external_contact(corp_id=CORP_ID,
                                                          external_user_id="wmHANG1"))
        loop = asyncio.get_running_loop()
        started = loop.time()
        ok = await app.post_callback(payloads.external_contact(corp_id=CORP_ID))
        assert ok.status_code == 200
        assert loop.time() - started < 2  # the callback path is not stuck behind the handler
        await wait_until(lambda: _statuses_are(app, {"failed", "done"}), 15)
        hung, healthy = await rows(app)
        assert hung.status == "failed" and hung.attempts == 2
        assert hung.last_error.startswith(("TimeoutError", "OperationalError", "QueryCanceled"))
        assert healthy.status == "done"
        assert (await app.client.get("/healthz")).status_code == 200


async def _statuses_are(app: RunningApp, wanted: set[str]) -> bool:
    return {row.status for row in await rows(app)} == wanted


async def test_shutdown_mid_handler_leaves_the_row_for_the_next_start(settings: Settings) -> None:
    gate, calls = asyncio.Event(), []
    slow = make_settings(settings.database_url, reply_wait_ms=0)
    async with serve_app(slow, router=gated_reply_router(gate, calls)) as first:
        await first.post_callback(payloads.text_message("hi", from_user=OPERATOR,
                                                         corp_id=CORP_ID))
        await wait_until(lambda: _true(bool(calls)), 5)
    # The first process stopped while the handler waited: nothing committed, lease released.
    gate.set()
    async with serve_app(settings, router=gated_reply_router(gate, calls)) as second:
        await second.idle()
        [row] = await rows(second)
        assert row.status == "done" and row.attempts == 2 and "echo hi" in row.reply
        assert len(calls) == 2


async def test_a_hung_workers_lease_runs_out_and_the_row_is_taken_over(
        settings: Settings) -> None:
    """A claimer still connected (alive to the database, stuck otherwise) keeps its rows until
    its lease runs out."""
    async with serve_app(settings, run_worker=False) as app:
        await app.post_callback(payloads.external_contact(corp_id=CORP_ID))
        hung = Liveness(app.runtime.db, "hung-host:1:x")
        await hung.ensure()
        try:
            async with app.runtime.db.unit_of_work() as session:
                [claimed] = await store.claim(session, hung.owner, utcnow(), lease_s=60)
            assert claimed.attempts == 1
            worker = app.runtime.worker
            assert await worker.process_one() is None  # still leased to the hung worker
            worker.clock = lambda: utcnow() + timedelta(seconds=61)
            processed = await worker.process_one()
        finally:
            await hung.close()
        assert processed is not None and processed.status == "done"
        [row] = await rows(app)
        assert row.attempts == 2 and row.lease_owner is None


async def test_a_dead_workers_claim_is_free_at_once_on_postgresql(settings: Settings) -> None:
    """A claimer whose database session ended (killed) left no liveness lock: its rows are
    taken over at once, whatever its lease says. SQLite has one process: the lease decides."""
    async with serve_app(settings, run_worker=False) as app:
        await app.post_callback(payloads.external_contact(corp_id=CORP_ID))
        dead = Liveness(app.runtime.db, "dead-host:1:x")
        await dead.ensure()
        async with app.runtime.db.unit_of_work() as session:
            await store.claim(session, dead.owner, utcnow(), lease_s=60)
        await dead.close()  # as the kernel closes a killed process's connection
        processed = await app.runtime.worker.process_one()
        if app.runtime.db.is_sqlite:
            assert processed is None
            return
        assert processed is not None and processed.status == "done"
        [row] = await rows(app)
        assert row.attempts == 2

async def test_payload_that_kills_the_process_is_parked_after_the_last_attempt(
        settings: Settings) -> None:
    async with serve_app(settings, run_worker=False) as app:
        await app.post_callback(payloads.external_contact(corp_id=CORP_ID))
        # Every attempt so far died with its process: counted at claim, never recorded.
        async with app.runtime.db.unit_of_work() as session:
            await session.execute(update(InboxEvent).values(
                attempts=settings.inbox_max_attempts, lease_owner="dead:1:x",
                lease_until=utcnow() - timedelta(seconds=1)))
        processed = await app.runtime.worker.process_one()
        assert processed is not None and processed.status == "failed"
        [row] = await rows(app)
        assert "died while handling" in row.last_error


async def test_healthz_reports_a_stopped_worker(running: RunningApp) -> None:
    await running.runtime.worker.stop()
    response = await running.client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "ok", "worker": "stopped"}


async def test_done_rows_past_retention_are_purged_failed_rows_kept(settings: Settings) -> None:
    async with serve_app(settings, run_worker=False) as app:
        for _ in range(2):
            await app.post_callback(payloads.external_contact(corp_id=CORP_ID))
        async with app.runtime.db.unit_of_work() as session:
            first, second = (await session.execute(
                select(InboxEvent).order_by(InboxEvent.id))).scalars()
            old = utcnow() - timedelta(days=settings.inbox_retention_days + 1)
            first.status, first.processed_at = "done", old
            second.status, second.processed_at = "failed", old
        await app.runtime.worker._purge_if_due()
        assert [row.status for row in await rows(app)] == ["failed"]
