"""Handling inbox rows off the request: at start, when woken, and on a periodic sweep.

A row goes through three short steps: claim (lease + attempt counted, committed at once, a few
rows per statement), handle (one unit of work: the handler's effects and `done` commit together,
or nothing does), and on any failure record the attempt in a fresh transaction. So a failing or
hanging handler is retried with backoff, parked after the last attempt, never blocks the rows
behind it, and a process that dies mid-handler leaves a lease that simply runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.contextvars import bound_contextvars

from app.engine.bot.context import Ctx
from app.engine.bot.router import Router
from app.engine.config import Settings
from app.engine.db import Database, utcnow
from app.engine.inbox import store
from app.engine.inbox.models import DONE, FAILED, PENDING
from app.engine.liveness import Liveness
from app.engine.logs import Redactor, get_logger
from app.engine.outbox import store as outbox
from app.engine.wecom.api import SendMessage, Text
from app.engine.wecom.parsing import event_from_payload
from app.engine.wecom.xmlutil import XmlError, parse_xml

T = TypeVar("T")

log = get_logger("sopbot.inbox")
POLL_S = 0.05
LEASE_MARGIN_S = 30.0
# SQLite has one writer: a handler's unit of work holds the write lock, and callbacks wait
# behind it, so handlers get less time there than WeCom's 5-second answer window.
SQLITE_HANDLER_CAP_S = 3.0
LIMIT_STATEMENTS = text("SELECT set_config('statement_timeout', :ms, true), "
                        "set_config('lock_timeout', :ms, true)")
PURGE_EVERY = timedelta(hours=1)
CLAIM_BATCH = 16
YIELD_LIMIT_S = 0.2  # × CLAIM_BATCH stays far inside a claim's lease
WAKE_COALESCE_S = 0.02


@dataclass(frozen=True)
class Processed:
    inbox_id: int
    status: str
    handler: str | None
    reply: str | None


def reply_as_message(reply_xml: str, agent_id: int | None) -> SendMessage | None:
    """The text passive reply as a message/send call to the same member, if it can be one."""
    try:
        fields = parse_xml(reply_xml)
    except XmlError:
        return None
    to_user, content = fields.get("ToUserName"), fields.get("Content")
    if agent_id is None or fields.get("MsgType") != "text" or not isinstance(to_user, str) \
            or not isinstance(content, str) or not to_user or not content:
        return None
    return SendMessage(agentid=agent_id, touser=to_user, msgtype="text",
                       text=Text(content=content))


class LeaseLost(Exception):
    """Another worker took the row over (our lease ran out); its outcome is theirs to record."""


class InboxWorker:
    def __init__(self, db: Database, router: Router, settings: Settings, flows: Any,
                 clock: Callable[[], datetime] = utcnow, liveness: Liveness | None = None
                 ) -> None:
        # The loaded sop_flows (app.flows.Flows, above the engine): carried to each Ctx.
        self.db, self.router, self.settings, self.flows = db, router, settings, flows
        self.clock = clock
        # Its claims end with it (app/engine/liveness.py): shared with the process's outbox sender,
        # or its own.
        self.liveness, self._own_liveness = liveness or Liveness(db), liveness is None
        self.owner = self.liveness.owner
        # Something more urgent in this process to let go first (the outbox's fast lane),
        # waited for before each event, at most YIELD_LIMIT_S so the inbox never stalls.
        self.yield_to: Callable[[float], Awaitable[None]] | None = None
        # SQLite has one writer at a time; more lanes would only queue on its lock.
        self.lanes = 1 if db.is_sqlite else settings.inbox_concurrency
        self.handler_timeout_s = (min(settings.handler_timeout_s, SQLITE_HANDLER_CAP_S)
                                  if db.is_sqlite else settings.handler_timeout_s)
        self.lease_s = self.handler_timeout_s + LEASE_MARGIN_S
        self.redactor = Redactor(settings.secret_values())
        self._wake = asyncio.Event()
        self._inline = asyncio.Semaphore(settings.inbox_concurrency)
        self._tasks: set[asyncio.Task[Any]] = set()
        # Requests waiting for a row another lane of this process holds: woken when it is done.
        self._settled: dict[int, asyncio.Event] = {}
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
            if await self._woken_within(self.settings.inbox_sweep_s):
                # Let the callbacks arriving right behind this one join its claim: under load
                # one claim then serves a batch instead of one row.
                await asyncio.sleep(WAKE_COALESCE_S)

    async def _woken_within(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

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
        while batch := await self._claim(CLAIM_BATCH):
            for claimed in batch:
                if self.yield_to is not None:
                    await self.yield_to(YIELD_LIMIT_S)
                await self._process(claimed)
                count += 1
        return count

    async def process_one(self, inbox_id: int | None = None) -> Processed | None:
        """Claim one due row (or the given one) and handle it; None when there was none."""
        batch = await self._claim(1, inbox_id)
        return await self._process(batch[0]) if batch else None

    async def _claim(self, limit: int, inbox_id: int | None = None) -> list[store.Claimed]:
        await self.liveness.ensure()
        async with self.db.unit_of_work() as session:
            return await store.claim(session, self.owner, self.clock(), self.lease_s, limit,
                                     inbox_id)

    async def _process(self, claimed: store.Claimed) -> Processed | None:
        """Handle a claimed row; None if another worker took it over meanwhile."""
        with bound_contextvars(callback_id=claimed.callback_id, inbox_id=claimed.inbox_id,
                               kind=claimed.kind):
            try:
                return await self._attempt(claimed)
            except LeaseLost:
                log.warning("inbox_lease_lost")
                return None
            finally:
                if (settled := self._settled.get(claimed.inbox_id)) is not None:
                    settled.set()  # a request of this process is waiting for this row

    async def _attempt(self, claimed: store.Claimed) -> Processed:
        if claimed.attempts > self.settings.inbox_max_attempts:
            return await self._record_failure(claimed, RuntimeError(
                "the process died while handling this event on its last attempt"))
        try:
            return await self._run_handler(claimed)
        except LeaseLost:
            raise
        except Exception as exc:
            return await self._record_failure(claimed, exc)

    async def _run_handler(self, claimed: store.Claimed) -> Processed:
        if self.clock() >= claimed.lease_until:
            raise LeaseLost()  # waited too long in its batch; another worker may have it now
        async with self.db.unit_of_work() as session:
            await self._limit_statements(session)
            ctx = Ctx(session=session, settings=self.settings, flows=self.flows, log=log,
                      inbox_id=claimed.inbox_id, callback_id=claimed.callback_id,
                      now=self.clock(), received_at=claimed.received_at)
            handler = await asyncio.wait_for(
                self.router.dispatch(event_from_payload(claimed.payload), ctx),
                self.handler_timeout_s)
            # Conditional on our lease: if another worker took the row over, this rolls back
            # the handler's effects, so an event's effects land exactly once.
            if not await store.finish(session, claimed, self.owner, handler, ctx.reply,
                                      self.clock()):
                raise LeaseLost()
        log.info("event_handled", handler=handler or "unrouted", attempt=claimed.attempts,
                 lag_ms=round((self.clock() - claimed.received_at).total_seconds() * 1000))
        return Processed(claimed.inbox_id, DONE, handler, ctx.reply)

    async def _limit_statements(self, session: AsyncSession) -> None:
        # A handler stuck on a lock or a slow query is stopped by PostgreSQL itself, so the
        # connection stays usable; the asyncio timeout is the backstop for everything else.
        if not self.db.is_sqlite:
            ms = f"{int(self.handler_timeout_s * 1000)}ms"
            await session.execute(LIMIT_STATEMENTS, {"ms": ms})

    async def _record_failure(self, claimed: store.Claimed, exc: Exception) -> Processed:
        error = self.redactor.clean(f"{type(exc).__name__}: {exc}")
        values = store.failure_values(claimed.attempts, error, self.clock(),
                                      max_attempts=self.settings.inbox_max_attempts,
                                      base_s=self.settings.inbox_retry_base_s,
                                      max_s=self.settings.inbox_retry_max_s)
        async with self.db.unit_of_work() as session:
            if not await store.record_failure(session, claimed, self.owner, values):
                raise LeaseLost()
        status = values.get("status", PENDING)
        if status == FAILED:
            log.error("event_parked", error=error, attempts=claimed.attempts, exc_info=exc)
        else:
            log.warning("handler_failed", error=error, attempt=claimed.attempts,
                        retry_at=values["next_attempt_at"].isoformat(), exc_info=exc)
        return Processed(claimed.inbox_id, status, None, None)

    async def process_now(self, inbox_id: int, timeout_s: float) -> str | None:
        """Handle this row at once for a waiting callback; its passive reply, or None if late."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        task = self._spawn(self._process_inline(inbox_id))
        try:
            processed = await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:
            processed = None
        if processed is not None:
            return processed.reply
        # Late, or another lane or replica holds the row: wait for its outcome there.
        finished, reply = await self._outcome(inbox_id, deadline)
        if not finished:
            self._spawn(self._note_missed_reply(inbox_id))
        return reply

    async def _process_inline(self, inbox_id: int) -> Processed | None:
        async with self._inline:  # a burst of member messages must not drain the pool
            return await self.process_one(inbox_id)

    async def _outcome(self, inbox_id: int, deadline: float) -> tuple[bool, str | None]:
        """(handled or given up on, its reply) once the row leaves `pending`, or at deadline.

        A lane of this process wakes us as soon as it is done with the row; a row handled by
        another replica is seen by polling."""
        loop = asyncio.get_running_loop()
        settled = self._settled.setdefault(inbox_id, asyncio.Event())
        try:
            while True:
                settled.clear()
                async with self.db.reader() as session:
                    row = await store.get_row(session, inbox_id)
                if row is None or row.status != PENDING:
                    return True, row.reply if row is not None and row.status == DONE else None
                if loop.time() >= deadline:
                    return False, None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(settled.wait(), min(POLL_S, deadline - loop.time()))
        finally:
            self._settled.pop(inbox_id, None)

    async def _note_missed_reply(self, inbox_id: int) -> None:
        """The callback was answered before its handler finished: once the handler has
        produced its reply, send it as an app message instead."""
        deadline = asyncio.get_running_loop().time() + self.lease_s
        _, reply = await self._outcome(inbox_id, deadline)
        if reply is None:
            return
        call = reply_as_message(reply, self.settings.agent_id)
        if call is None:
            log.warning("passive_reply_missed", inbox_id=inbox_id, sent=False)
            return
        async with self.db.unit_of_work() as session:
            await outbox.enqueue(session, f"reply:{inbox_id}", call, kind="late_reply")
        log.warning("passive_reply_missed", inbox_id=inbox_id, sent=True)

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

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
        if self._own_liveness:
            await self.liveness.close()

