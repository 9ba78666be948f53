"""Crashes and failing handlers lose nothing and handle nothing twice."""

from __future__ import annotations

import asyncio

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from app.engine.bot.context import Ctx
from app.engine.bot.router import Router
from app.engine.config import Settings
from app.engine.inbox.models import InboxEvent
from app.engine.wecom.events import ExternalContactAdded, ExternalContactEvent
from tests.conftest import CORP_ID, OPERATOR, RunningApp, make_settings, serve_app, wait_until
from tests.fakes import payloads

effects_meta = MetaData()
effects = Table("test_effect", effects_meta, Column("id", Integer, primary_key=True),
                Column("external_user_id", String(64)))


async def rows(app: RunningApp) -> list[InboxEvent]:
    async with app.runtime.db.sessions() as session:
        return list((await session.execute(select(InboxEvent).order_by(InboxEvent.id))).scalars())


async def create_effects_table(app: RunningApp) -> None:
    async with app.runtime.db.engine.begin() as conn:
        await conn.run_sync(effects_meta.drop_all)
        await conn.run_sync(effects_meta.create_all)


async def effect_count(app: RunningApp) -> int:
    async with app.runtime.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(effects)) or 0


def flaky_router(failures_before_success: int, calls: list[str]) -> Router:
    """A handler that writes an effect row, then raises for its first N calls."""

    async def record_then_maybe_fail(event: ExternalContactAdded, ctx: Ctx) -> None:
        """Test rule: write one effect per event; fail the first N attempts after writing."""
        calls.append(event.external_user_id)
        await ctx.session.execute(insert(effects).values(external_user_id=event.external_user_id))
        if event.external_user_id.startswith("wmFLAKY") and \
                calls.count(event.external_user_id) <= failures_before_success:
            raise RuntimeError(f"simulated failure for 13812345678 #{len(calls)}")

    router = Router("test", partial=True)  # its own handlers: no behaviour's intake
    router.add(ExternalContactAdded, record_then_maybe_fail)
    return router


async def test_event_stored_before_a_crash_is_handled_after_restart(settings: Settings) -> None:
    # First life: the callback is answered, then the process dies before its worker runs.
    async with serve_app(settings, run_worker=False) as first:
        response = await first.post_callback(payloads.external_contact(corp_id=CORP_ID))
        assert response.status_code == 200
        [row] = await rows(first)
        assert row.status == "pending"
    # Second life: pending rows are handled at start.
    async with serve_app(settings) as second:
        await wait_until(lambda: _all_done(second), 10)
        [row] = await rows(second)
        assert row.status == "done" and row.attempts == 1


async def _all_done(app: RunningApp) -> bool:
    return all(r.status == "done" for r in await rows(app))


async def test_retry_after_crash_gets_the_reply_and_handles_once(settings: Settings) -> None:
    plaintext = payloads.text_message("/help", from_user=OPERATOR, corp_id=CORP_ID)
    slow = make_settings(settings.database_url, reply_wait_ms=0)
    async with serve_app(slow, run_worker=False) as first:
        # Simulate the crash: the row is committed but its handling never ran.
        first.runtime.worker.process_now = _never  # type: ignore[method-assign]
        assert (await first.post_callback(plaintext)).content == b""
    async with serve_app(settings, run_worker=False) as second:
        retry = await second.post_callback(plaintext)
        reply = second.crypto.decrypt_reply(retry.content)
        assert "查看本帮助" in reply
        [row] = await rows(second)
        assert (row.status, row.attempts) == ("done", 1)


async def _never(inbox_id: int, timeout_s: float) -> None:
    return None


async def test_failing_handler_is_retried_with_backoff_then_succeeds_once(
        settings: Settings) -> None:
    calls: list[str] = []
    async with serve_app(settings, router=flaky_router(2, calls)) as app:
        await create_effects_table(app)
        await app.post_callback(payloads.external_contact(
            corp_id=CORP_ID, external_user_id="wmFLAKY1"))
        await wait_until(lambda: _all_done(app), 10)
        [row] = await rows(app)
        assert row.attempts == 3
        assert calls == ["wmFLAKY1"] * 3
        # The failed attempts' writes were rolled back with their units of work.
        assert await effect_count(app) == 1


async def test_handler_that_always_fails_is_parked_and_does_not_block_others(
        settings: Settings) -> None:
    calls: list[str] = []
    async with serve_app(settings, router=flaky_router(99, calls)) as app:
        await create_effects_table(app)
        await app.post_callback(payloads.external_contact(
            corp_id=CORP_ID, external_user_id="wmFLAKY2"))
        await app.post_callback(payloads.external_contact(
            corp_id=CORP_ID, external_user_id="wmHEALTHY"))
        await wait_until(lambda: _settled(app), 15)
        failed, healthy = await rows(app)
        assert failed.status == "failed"
        assert failed.attempts == settings.inbox_max_attempts
        assert "RuntimeError: simulated failure" in (failed.last_error or "")
        assert "13812345678" not in failed.last_error  # phones are masked in stored errors
        assert "138****5678" in failed.last_error
        assert healthy.status == "done" and healthy.attempts == 1
        assert await effect_count(app) == 1  # only the healthy event's effect remains
        assert calls.index("wmHEALTHY") < len(calls) - 1  # it ran while the other kept failing


async def _settled(app: RunningApp) -> bool:
    return all(r.status in ("done", "failed") for r in await rows(app))


async def test_two_workers_on_one_database_handle_each_event_once(settings: Settings) -> None:
    calls: list[str] = []
    ids = [f"wmPAIR{i:03d}" for i in range(30)]
    async with serve_app(settings, run_worker=False, router=flaky_router(0, calls)) as a, \
            serve_app(settings, run_worker=False, router=flaky_router(0, calls)) as b:
        await create_effects_table(a)
        for external_id in ids:
            await a.post_callback(payloads.external_contact(corp_id=CORP_ID,
                                                            external_user_id=external_id))
        drained = await asyncio.gather(a.runtime.worker.drain(), b.runtime.worker.drain(),
                                       a.runtime.worker.drain(), b.runtime.worker.drain())
        assert sum(drained) == len(ids)
        assert sorted(calls) == ids
        assert await effect_count(a) == len(ids)


async def test_handler_subclass_routing_reaches_base_class_handlers(settings: Settings) -> None:
    seen: list[str] = []

    async def note_contact_change(event: ExternalContactEvent, ctx: Ctx) -> None:
        """Test rule: every contact change is noted."""
        seen.append(event.kind)

    router = Router("test", partial=True)  # its own handlers: no behaviour's intake
    router.add(ExternalContactEvent, note_contact_change)
    async with serve_app(settings, router=router) as app:
        for change in ("add_external_contact", "del_follow_user", "edit_external_contact"):
            await app.post_callback(payloads.external_contact(change, corp_id=CORP_ID))
        await wait_until(lambda: _all_done(app), 10)
    assert sorted(seen) == ["external_contact.add", "external_contact.del_follow_user",
                            "external_contact.edit"]


async def test_operator_requeues_a_parked_event_and_it_is_handled(settings: Settings) -> None:
    from app.engine.inbox.admin import retry_failed, show_status

    calls: list[str] = []
    router = flaky_router(settings.inbox_max_attempts, calls)  # fails exactly until parked
    async with serve_app(settings, router=router) as app:
        await create_effects_table(app)
        await app.post_callback(payloads.external_contact(corp_id=CORP_ID,
                                                          external_user_id="wmFLAKY3"))
        await wait_until(lambda: _settled(app), 15)
        status = await show_status(settings.database_url)
        assert "failed   1" in status and "RuntimeError: simulated failure" in status
        assert await retry_failed(settings.database_url, None) == 1
        app.runtime.worker.wake()
        await wait_until(lambda: _all_done(app), 10)
        [row] = await rows(app)
        assert row.attempts == 1 and row.last_error is None
        assert len(calls) == settings.inbox_max_attempts + 1
        assert await effect_count(app) == 1
