"""Group commit for the callback path: callbacks that arrive together share one transaction.

Every callback must be committed before it is answered. One transaction per callback caps the
service at what the database commits per second; here a flusher takes whatever has queued
while the previous batch was being written and stores it with one INSERT and one commit.
Under light load a batch is a single callback, so nothing waits for company.

Intake: a few messages must not wait for the inbox worker's backlog (a welcome has 20 seconds,
and a burst of friend adds can queue hundreds of events). A behaviour's intake (declared on its
route, app/engine/bot/router.py) turns an event into an outbox row using nothing but the event
itself; the row is stored in the same transaction as the inbox row, so the sender has it the
moment the callback is answered. The handler that runs later queues the same idempotency key,
which is then a no-op.
"""

from __future__ import annotations

import asyncio
from typing import Any

from app.engine.bot.router import IntakeRule
from app.engine.db import Database, utcnow
from app.engine.inbox import store
from app.engine.logs import get_logger
from app.engine.outbox import store as outbox
from app.engine.wecom.events import Event

log = get_logger("sopbot.inbox")
MAX_BATCH = 200  # keeps the INSERT well under SQLite's bound-parameter limit


Pending = tuple[dict[str, Any], "asyncio.Future[store.Accepted]", outbox.Message | None]


class InboxWriter:
    def __init__(self, db: Database, intake: IntakeRule[Event] | None = None) -> None:
        self.db = db
        self.intake = intake
        self._queue: list[Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def accept(self, event: Event, payload: str, callback_id: str) -> store.Accepted:
        """Store the callback (committed when this returns) or raise the database's error."""
        future: asyncio.Future[store.Accepted] = asyncio.get_running_loop().create_future()
        self._queue.append((store.new_row(event, payload, callback_id), future,
                            self._intake(event)))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="inbox-writer")
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                await self._store(batch)
            except Exception:
                # One bad row must not fail its neighbours: store them one by one.
                for item in batch:
                    await self._store_alone(item)

    def _intake(self, event: Event) -> outbox.Message | None:
        # The router's rule logs and passes over a rule that raises (app/engine/bot/router.py).
        return None if self.intake is None else self.intake(event, utcnow())

    async def _store(self, batch: list[Pending]) -> None:
        async with self.db.unit_of_work() as session:
            results = await store.accept_many(session, [row for row, _, _ in batch])
            await outbox.enqueue_many(session, [
                item for (_, _, item), result in zip(batch, results, strict=True)
                if item is not None and not result.duplicate])
        for (_, future, _), result in zip(batch, results, strict=True):
            if not future.done():  # the request may have been cancelled meanwhile
                future.set_result(result)

    async def _store_alone(self, item: Pending) -> None:
        try:
            await self._store([item])
        except Exception as exc:
            if not item[1].done():
                item[1].set_exception(exc)  # this request answers 500; WeCom retries it
