"""Handling inbox rows off the request: at start, when woken, and on a periodic sweep.

A row goes through three short steps: claim (lease + attempt counted, committed at once), handle
(one unit of work: the handler's effects and `done` commit together, or nothing does), and on any
failure record the attempt in a fresh transaction. So a failing or hanging handler is retried
with backoff, parked after the last attempt, never blocks the rows behind it, and a process that
dies mid-handler leaves a lease that simply runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.contextvars import bound_contextvars

from app.bot.context import Ctx
from app.bot.router import Router
from app.config import Settings
from app.db import Database, utcnow
from app.flows import Flows
from app.inbox import store
from app.inbox.models import DONE, FAILED, PENDING
from app.logs import Redactor, get_logger
from app.wecom.events import event_from_xml

log = get_logger("sopbot.inbox")
POLL_S = 0.05
LEASE_MARGIN_S = 30.0
# SQLite has one writer: a handler's unit of work holds the write lock, and callbacks wait
# behind it, so handlers get less time there than WeCom's 5-second answer window.
SQLITE_HANDLER_CAP_S = 3.0
PURGE_EVERY = timedelta(hours=1)


@dataclass(frozen=True)
class Processed:
    inbox_id: int
    status: str
    handler: str | None
    reply: str | None


class LeaseLost(Exception):
    """Another worker took the row over (our lease ran out); its outcome is theirs to record."""


def worker_id() -> str:
    return f"{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class InboxWorker:
    def __init__(self, db: Database, router: Router, settings: Settings, flows: Flows,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.router, self.settings, self.flows, self.clock = db, router, settings, flows, clock
        self.owner = worker_id()
        # SQLite has one writer at a time; more lanes would only queue on its lock.
        self.lanes = 1 if db.is_sqlite else settings.inbox_concurrency
        self.handler_timeout_s = (min(settings.handler_timeout_s, SQLITE_HANDLER_CAP_S)
                                  if db.is_sqlite else settings.handler_timeout_s)
        self.lease_s = self.handler_timeout_s + LEASE_MARGIN_S
        self.redactor = Redactor(settings.secret_values())
        self._wake = asyncio.Event()
        self._inline = asyncio.Semaphore(settings.inbox_concurrency)
        self._tasks: set[asyncio.Task[Processed | None]] = set()
        self._run_task: asyncio.Task[None] | None = None
        self._last_purge: datetime | None = None

    def start(self) -> None:
        self._run_task = asyncio.create_task(self.run(), name="inbox-worker")

    @property
    def alive(self) -> bool | None:
        """None when this process runs no worker; else whether its loop is still running."""
        return None if self._run_task is None else not self._run_task.done()

    def wake(self) -> None:
        """Ask the run loop to look for due rows now (a callback was just stored)."""
        self._wake.set()

    async def run(self) -> None:
        """Drain due rows, then sleep until woken or the sweep interval passes; forever."""
        log.info("inbox_worker_started", owner=self.owner, lanes=self.lanes)
        if self.db.is_sqlite:
            await self._release_dead_leases()
        while True:
            self._wake.clear()
            try:
                await self.drain()
                await self._purge_if_due()
            except Exception:
                log.exception("inbox_sweep_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.inbox_sweep_s)

    async def drain(self) -> int:
        """Process every due row; returns how many were processed."""
        results = await asyncio.gather(*(self._lane() for _ in range(self.lanes)),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.error("inbox_lane_failed", exc_info=result)
        return sum(result for result in results if isinstance(result, int))

    async def _lane(self) -> int:
        count = 0
        while await self.process_one() is not None:
            count += 1
        return count

    async def process_one(self, inbox_id: int | None = None) -> Processed | None:
        """Claim one due row (or the given one) and handle it; None when there was none."""
        claimed = await self._claim(inbox_id)
        if claimed is None:
            return None
        with bound_contextvars(callback_id=claimed.callback_id, inbox_id=claimed.inbox_id,
                               kind=claimed.kind):
            try:
                if claimed.attempts > self.settings.inbox_max_attempts:
                    return await self._record_failure(claimed, RuntimeError(
                        "the process died while handling this event on its last attempt"))
                return await self._handle(claimed)
            except LeaseLost:
                log.warning("inbox_lease_lost")
                return None

    async def _claim(self, inbox_id: int | None) -> store.Claimed | None:
        async with self.db.unit_of_work() as session:
            return await store.claim(session, self.owner, self.clock(), self.lease_s, inbox_id)

    async def _handle(self, claimed: store.Claimed) -> Processed:
        try:
            return await self._run_handler(claimed)
        except LeaseLost:
            raise
        except Exception as exc:
            return await self._record_failure(claimed, exc)

    async def _run_handler(self, claimed: store.Claimed) -> Processed:
        async with self.db.unit_of_work() as session:
            row = await store.lock_leased(session, claimed, self.owner)
            if row is None:
                raise LeaseLost()
            await self._limit_statements(session)
            ctx = Ctx(session=session, settings=self.settings, flows=self.flows, log=log,
                      inbox_id=row.id, callback_id=row.callback_id, now=self.clock())
            handler = await asyncio.wait_for(
                self.router.dispatch(event_from_xml(row.payload), ctx), self.handler_timeout_s)
            store.mark_done(row, handler, ctx.reply, self.clock())
        log.info("event_handled", handler=handler or "unrouted", attempt=claimed.attempts,
                 lag_ms=round((self.clock() - claimed.received_at).total_seconds() * 1000))
        return Processed(claimed.inbox_id, DONE, handler, ctx.reply)

    async def _limit_statements(self, session: AsyncSession) -> None:
        # A handler stuck on a lock or a slow query is stopped by PostgreSQL itself, so the
        # connection stays usable; the asyncio timeout is the backstop for everything else.
        if not self.db.is_sqlite:
            ms = int(self.handler_timeout_s * 1000)
            await session.execute(text(f"SET LOCAL statement_timeout = {ms}"))
            await session.execute(text(f"SET LOCAL lock_timeout = {ms}"))

    async def _record_failure(self, claimed: store.Claimed, exc: Exception) -> Processed:
        error = self.redactor.clean(f"{type(exc).__name__}: {exc}")
        async with self.db.unit_of_work() as session:
            row = await store.lock_leased(session, claimed, self.owner)
            if row is None:
                raise LeaseLost()
            store.mark_failed_attempt(row, error, self.clock(),
                                      max_attempts=self.settings.inbox_max_attempts,
                                      base_s=self.settings.inbox_retry_base_s,
                                      max_s=self.settings.inbox_retry_max_s)
        if row.status == FAILED:
            log.error("event_parked", error=error, attempts=row.attempts, exc_info=exc)
        else:
            log.warning("handler_failed", error=error, attempt=row.attempts,
                        retry_at=row.next_attempt_at.isoformat(), exc_info=exc)
        return Processed(claimed.inbox_id, row.status, None, None)

    async def process_now(self, inbox_id: int, timeout_s: float) -> str | None:
        """Handle this row at once for a waiting callback; its passive reply, or None if late."""
        task = asyncio.create_task(self._process_inline(inbox_id))
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

    async def _process_inline(self, inbox_id: int) -> Processed | None:
        async with self._inline:  # a burst of member messages must not drain the pool
            return await self.process_one(inbox_id)

    async def _wait_for_other(self, inbox_id: int, timeout_s: float) -> str | None:
        # Another lane or replica holds the row (or already handled it): poll for its outcome.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            async with self.db.reader() as session:
                row = await store.get_row(session, inbox_id)
            if row is None or row.status != PENDING or loop.time() >= deadline:
                return row.reply if row is not None and row.status == DONE else None
            await asyncio.sleep(POLL_S)

    async def _release_dead_leases(self) -> None:
        async with self.db.unit_of_work() as session:
            released = await store.release_leases(session)
        if released:
            log.warning("inbox_leases_released", count=released)

    async def _purge_if_due(self) -> None:
        now = self.clock()
        if self._last_purge is not None and now - self._last_purge < PURGE_EVERY:
            return
        self._last_purge = now
        cutoff = now - timedelta(days=self.settings.inbox_retention_days)
        async with self.db.unit_of_work() as session:
            purged = await store.purge_done(session, cutoff)
        if purged:
            log.info("inbox_purged", count=purged, before=cutoff.isoformat())

    async def stop(self) -> None:
        """Cancel the loop and in-flight work; their transactions roll back, leases run out."""
        tasks = [*self._tasks, *([self._run_task] if self._run_task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            async with self.db.unit_of_work() as session:
                await store.release_leases(session, self.owner)
        except Exception:
            log.warning("inbox_leases_not_released", exc_info=True)  # they expire on their own


def _log_missed_reply(task: asyncio.Task[Processed | None]) -> None:
    if task.cancelled() or task.exception() is not None:
        return
    processed = task.result()
    if processed is not None and processed.reply is not None:
        # WeCom has its answer already; the reply is kept on the row. Delivering it through
        # message/send belongs to the outbox (issue 3).
        log.warning("passive_reply_missed", inbox_id=processed.inbox_id)
