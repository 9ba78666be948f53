"""Handling inbox rows off the request: at start, when woken, and on a periodic sweep.

Each row is one unit of work: claim (row lock) → route → handler's effects + `done` commit
together. A handler that raises is rolled back to a savepoint and the attempt is recorded in the
same transaction, so a failing event is retried with backoff, parked after the last attempt, and
never holds up the rows behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from structlog.contextvars import bound_contextvars

from app.bot.context import Ctx
from app.bot.router import Router
from app.config import Settings
from app.db import Database, utcnow
from app.flows import Flows
from app.inbox import store
from app.inbox.models import DONE, FAILED, PENDING, InboxEvent
from app.logs import get_logger
from app.wecom.events import event_from_xml

log = get_logger("sopbot.inbox")
POLL_S = 0.05


@dataclass(frozen=True)
class Processed:
    inbox_id: int
    status: str
    handler: str | None
    reply: str | None


class InboxWorker:
    def __init__(self, db: Database, router: Router, settings: Settings, flows: Flows,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.router, self.settings, self.flows, self.clock = db, router, settings, flows, clock
        # SQLite has one writer at a time; more lanes would only queue on its lock.
        self.lanes = 1 if db.is_sqlite else settings.inbox_concurrency
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Processed | None]] = set()

    def wake(self) -> None:
        """Ask the run loop to look for due rows now (a callback was just stored)."""
        self._wake.set()

    async def run(self) -> None:
        """Drain due rows, then sleep until woken or the sweep interval passes; forever."""
        log.info("inbox_worker_started", lanes=self.lanes, sweep_s=self.settings.inbox_sweep_s)
        while True:
            self._wake.clear()
            try:
                await self.drain()
            except Exception:
                log.exception("inbox_drain_failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.inbox_sweep_s)
            except TimeoutError:
                pass

    async def drain(self) -> int:
        """Process every due row; returns how many were processed."""
        counts = await asyncio.gather(*(self._lane() for _ in range(self.lanes)))
        return sum(counts)

    async def _lane(self) -> int:
        count = 0
        while await self.process_one() is not None:
            count += 1
        return count

    async def process_one(self, inbox_id: int | None = None) -> Processed | None:
        """Claim one due row (or the given one) and handle it in one unit of work."""
        now = self.clock()
        async with self.db.unit_of_work() as session:
            row = await store.claim_due(session, now, inbox_id)
            if row is None:
                return None
            with bound_contextvars(callback_id=row.callback_id, inbox_id=row.id, kind=row.kind):
                await self._handle(session, row, now)
            return Processed(row.id, row.status, row.handler, row.reply)

    async def _handle(self, session: AsyncSession, row: InboxEvent, now: datetime) -> None:
        ctx = Ctx(session=session, settings=self.settings, flows=self.flows, log=log,
                  inbox_id=row.id, callback_id=row.callback_id, now=now)
        try:
            event = event_from_xml(row.payload)
            async with session.begin_nested():
                handler = await asyncio.wait_for(self.router.dispatch(event, ctx),
                                                 self.settings.handler_timeout_s)
        except Exception as exc:
            self._record_failure(row, exc, now)
            return
        store.mark_done(row, handler, ctx.reply, now)
        log.info("event_handled", handler=handler or "unrouted", attempt=row.attempts,
                 lag_ms=round((now - row.received_at).total_seconds() * 1000))

    def _record_failure(self, row: InboxEvent, exc: Exception, now: datetime) -> None:
        error = f"{type(exc).__name__}: {exc}"
        store.mark_failed_attempt(row, error, now, max_attempts=self.settings.inbox_max_attempts,
                                  base_s=self.settings.inbox_retry_base_s,
                                  max_s=self.settings.inbox_retry_max_s)
        if row.status == FAILED:
            log.error("event_parked", error=error, attempts=row.attempts, exc_info=exc)
        else:
            log.warning("handler_failed", error=error, attempt=row.attempts,
                        retry_at=row.next_attempt_at.isoformat(), exc_info=exc)

    async def process_now(self, inbox_id: int, timeout_s: float) -> str | None:
        """Handle this row at once for a waiting callback; its passive reply, or None if late."""
        task = asyncio.create_task(self.process_one(inbox_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            processed = await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:
            task.add_done_callback(_log_missed_reply)
            return None
        if processed is not None:
            return processed.reply
        return await self._wait_for_other(inbox_id, timeout_s)

    async def _wait_for_other(self, inbox_id: int, timeout_s: float) -> str | None:
        # Another lane or replica holds the row (or already handled it): poll for its outcome.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            async with self.db.sessions() as session:
                row = await store.get_row(session, inbox_id)
            if row is None or row.status != PENDING or loop.time() >= deadline:
                return row.reply if row is not None and row.status == DONE else None
            await asyncio.sleep(POLL_S)

    async def stop(self) -> None:
        """Cancel in-flight work; its transactions roll back and the rows stay pending."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _log_missed_reply(task: asyncio.Task[Processed | None]) -> None:
    if task.cancelled() or task.exception() is not None:
        return
    processed = task.result()
    if processed is not None and processed.reply is not None:
        # WeCom has its answer already; the reply is kept on the row. Delivering it through
        # message/send belongs to the outbox (issue 3).
        log.warning("passive_reply_missed", inbox_id=processed.inbox_id)
