"""Delivering outbox rows to WeCom: claim, book rate slots, send, settle.

Two lanes claim from the same table: the fast lane takes only priority FAST rows (welcomes, with
their 20-second window) and is woken the moment one is committed; the bulk lane takes the rest.
A lane works in waves: claim a batch (lease + attempt counted), book the batch's rate slots and
mark requests WeCom cannot deduplicate as in flight (one transaction), send them concurrently,
each at its slot, then write every outcome (one transaction, each statement conditional on the
lease). Two bulk workers overlap their waves so the rate limit, not the bookkeeping, sets the
pace. Every claim has its own lease token, so not even two lanes of one process can settle each
other's rows. Stopping lets the requests in flight finish and gives every row not yet sent back.

The outcome rules (wecom-reference §7) live in app/engine/outbox/outcomes.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from structlog.contextvars import bound_contextvars

from app.engine.config import Settings
from app.engine.db import Database, utcnow
from app.engine.liveness import Liveness
from app.engine.logs import get_logger
from app.engine.outbox import ratelimit, store
from app.engine.outbox.models import FAST
from app.engine.outbox.outcomes import (
    LOST,
    Outcome,
    Policy,
    decide,
    rebuild,
    without_request,
)
from app.engine.wecom.api import ApiCall
from app.engine.wecom.client import WeComClient
from app.engine.wecom.errors import OutcomeUnknown, WeComError

log = get_logger("sopbot.outbox")
FAST_BATCH, BULK_BATCH = 16, 64
# Workers per lane: their waves overlap, so one wave's slowest answer does not hold up the next
# claim (welcomes), and bookkeeping does not eat into the rate (bulk).
FAST_WORKERS, BULK_WORKERS = 4, 2
# Requests in flight per lane and process. Bulk rows are paced by rate limits, so a few
# suffice. Welcomes come in bursts and each must be answered within 20 s, so their lane waits
# on more answers at once, but not many more: httpcore scans its whole connection pool on
# every request, so more connections cost CPU on each one (bench/welcome_burst.py: 32 in
# flight gave a p99 of 0.8-1.3 s over 1,000 adds, 16 gave 0.47-0.62 s).
IN_FLIGHT = {True: 16, False: 8}
# How far ahead a wave may book rate slots; rows beyond wait in the table, not in memory.
MAX_SLOT_WAIT = timedelta(seconds=2)
LEASE_MARGIN_S = 30.0
# A call may fetch a token, be rejected, fetch another and retry: bounded as a whole at this
# many times the HTTP timeout, so a lease always outlasts the request it covers.
REQUEST_SPAN_TIMEOUTS = 4


class Planned:
    """One claimed row in a wave: its call, its slot, and finally its outcome."""

    def __init__(self, claimed: store.Claimed, call: ApiCall[Any] | None = None) -> None:
        self.claimed, self.call = claimed, call
        self.slot: datetime | None = None
        self.outcome: Outcome | None = None


# Runs in the settle transaction of a row of its kind whose outcome was just written, so what
# a domain records about a delivery (a welcome's latency) lands with the outcome itself.
SettledHook = Callable[[AsyncSession, store.Claimed, Outcome, datetime], Awaitable[None]]
AfterSettle = Callable[[AsyncSession, datetime], Awaitable[None]]


class OutboxSender:
    def __init__(self, db: Database, client: WeComClient, settings: Settings,
                 limits: ratelimit.RateLimits, clock: Callable[[], datetime] = utcnow,
                 liveness: Liveness | None = None) -> None:
        self.db, self.client, self.limits, self.clock = db, client, limits, clock
        self.settings = settings
        self.policy = Policy(settings.outbox_max_attempts, settings.outbox_retry_base_s,
                             settings.outbox_retry_max_s)
        # Its claims end with it (app/engine/liveness.py): shared with the process's inbox worker,
        # or its own.
        self.liveness, self._own_liveness = liveness or Liveness(db), liveness is None
        self.owner = self.liveness.owner
        self._claims = itertools.count()
        self.request_span = timedelta(seconds=REQUEST_SPAN_TIMEOUTS * settings.wecom_timeout_s)
        self.lease_s = (self.request_span + MAX_SLOT_WAIT).total_seconds() + LEASE_MARGIN_S
        self._wake = {True: asyncio.Event(), False: asyncio.Event()}
        self._stopping = asyncio.Event()
        # Clear while welcomes committed in this process wait for the fast lane: the inbox
        # worker holds back meanwhile (see fast_lane_idle), so a burst of friend adds is
        # welcomed first and recorded after.
        self._fast_idle = asyncio.Event()
        self._fast_idle.set()
        self._draining = {True: 0, False: 0}  # workers of each lane inside drain()
        self._tasks: list[asyncio.Task[None]] = []
        # Per lane, so a bulk wave never holds up a welcome.
        self._in_flight = {fast: asyncio.Semaphore(IN_FLIGHT[fast]) for fast in (True, False)}
        self.counts: Counter[str] = Counter()  # outcomes settled by this process
        self.settled_hooks: dict[str, list[SettledHook]] = {}
        self.after_hooks: list[AfterSettle] = []
        # Told of every outcome this process settles (the app's Prometheus counters).
        self.on_outcome: list[Callable[[store.Claimed, Outcome, datetime], None]] = []

    def on_settled(self, kind: str, hook: SettledHook) -> None:
        """Call `hook` for every settled row of `kind` (registered explicitly at start)."""
        self.settled_hooks.setdefault(kind, []).append(hook)

    def after_settled(self, hook: AfterSettle) -> None:
        """Call `hook` once per settle transaction, after the row hooks: work they collected
        in session.info that must take its locks last (app/groups/hooks.py)."""
        self.after_hooks.append(hook)

    # --- running -----------------------------------------------------------------------------

    def start(self) -> None:
        lanes = [*((f"fast-{n}", True) for n in range(FAST_WORKERS)),
                 *((f"bulk-{n}", False) for n in range(BULK_WORKERS))]
        self._tasks = [asyncio.create_task(self._run(fast), name=f"outbox-{name}")
                       for name, fast in lanes]

    @property
    def alive(self) -> bool | None:
        return None if not self._tasks else all(not task.done() for task in self._tasks)

    def wake(self, fast: bool = False) -> None:
        if fast and self.alive:
            self._fast_idle.clear()
        self._wake[fast].set()
        if fast:
            self._wake[False].set()  # the bulk lane too: it may have room for more

    def on_pending(self, priority: int) -> None:
        """Wake-up (app/engine/wakeups.py): a unit of work queued rows; the fast lane for
        welcomes."""
        self.wake(fast=priority <= FAST)

    async def _run(self, fast: bool) -> None:
        wake = self._wake[fast]
        while not self._stopping.is_set():
            wake.clear()
            self._draining[fast] += 1
            try:
                await self.drain(fast)
            except Exception:
                log.exception("outbox_lane_failed", fast=fast)
            self._draining[fast] -= 1
            # Idle only when no worker of the lane is still sending what it claimed.
            if fast and not self._draining[fast] and not wake.is_set():
                self._fast_idle.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.settings.outbox_sweep_s)

    async def fast_lane_idle(self, limit_s: float) -> None:
        """Return once no welcome waits for this process's fast lane, or after `limit_s`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._fast_idle.wait(), limit_s)

    async def stop(self) -> None:
        """Finish the requests in flight, give back every row not sent yet, release leases.

        Cancelling a wave instead would leave its rows marked in flight, and the next sender
        would have to treat each as an unknown outcome."""
        self._stopping.set()
        self._fast_idle.set()
        for event in self._wake.values():
            event.set()
        limit = (self.request_span + MAX_SLOT_WAIT).total_seconds() + 5
        _, late = await asyncio.wait(self._tasks, timeout=limit) if self._tasks else ((), ())
        for task in late:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            async with self.db.unit_of_work() as session:
                await store.release_leases(session, self.owner)
        except Exception:
            log.warning("outbox_leases_not_released", exc_info=True)  # they expire anyway
        if self._own_liveness:
            await self.liveness.close()

    async def release_dead_leases(self) -> None:
        """SQLite at start: the file belongs to this process, so any lease left is dead."""
        async with self.db.unit_of_work() as session:
            released = await store.release_leases(session)
        if released:
            log.warning("outbox_leases_released", count=released)

    # --- one wave ----------------------------------------------------------------------------

    async def drain(self, fast: bool) -> int:
        """Send every due row of the lane; how many rows were settled."""
        count = 0
        while not self._stopping.is_set() and (batch := await self._claim(fast)):
            await self.wave(batch)
            count += len(batch)
        return count

    async def _claim(self, fast: bool) -> list[store.Claimed]:
        await self.liveness.ensure()
        async with self.db.unit_of_work() as session:
            lease = store.lease_token(self.owner, next(self._claims))
            return await store.claim(session, lease, self.clock(), self.lease_s,
                                     FAST_BATCH if fast else BULK_BATCH, fast)

    async def wave(self, batch: list[store.Claimed]) -> None:
        planned = [self._plan(claimed) for claimed in batch]
        await self._book([p for p in planned if p.outcome is None])
        await asyncio.gather(*(self._send(p) for p in planned if p.outcome is None))
        await self._settle(planned)

    def _plan(self, claimed: store.Claimed) -> Planned:
        """Decide what needs no request (outcomes.without_request), or a call it cannot
        rebuild (a bug)."""
        planned = Planned(claimed)
        call, outcome = rebuild(claimed)
        planned.call, planned.outcome = call, outcome
        if call is not None:
            planned.outcome = without_request(claimed, call, self.clock())
        return planned

    async def _book(self, planned: list[Planned]) -> None:
        """Book a rate slot per row and mark each row in flight, in one commit."""
        if not planned:
            return
        now = self.clock()
        async with self.db.unit_of_work() as session:
            # Rate-slot rows are locked in key order by every sender: no deadlock between
            # replicas whose batches hold the same keys in another order.
            for key, group in sorted(_by_rate_key(planned).items()):
                rate = self.limits.for_key(key)
                slots = await ratelimit.take_slots(session, key, rate, now, MAX_SLOT_WAIT,
                                                   len(group))
                for item, slot in zip(group, slots, strict=False):
                    item.slot = slot
                for item in group[len(slots):]:
                    later = max(await ratelimit.next_free(session, key, rate) or now, now)
                    item.outcome = Outcome.later(item.claimed, later, counted=False,
                                                 error="waiting for a rate-limit slot")
            for item in planned:
                if item.slot is not None and not await store.mark_in_flight(
                        session, item.claimed, now):
                    item.slot, item.outcome = None, LOST

    async def _send(self, item: Planned) -> None:
        assert item.slot is not None
        with bound_contextvars(outbox_id=item.claimed.id, kind=item.claimed.kind):
            delay = (item.slot - self.clock()).total_seconds()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
            async with self._in_flight[item.claimed.priority <= FAST]:
                item.outcome = self._not_now(item) or await self._request(item)

    def _not_now(self, item: Planned) -> Outcome | None:
        """What becomes of a row that must not be sent after all, at the last moment."""
        claimed, now = item.claimed, self.clock()
        assert item.call is not None
        if (outcome := without_request(claimed, item.call, now)) is not None:
            return outcome
        if self._stopping.is_set():
            return Outcome.later(claimed, now, counted=False, error="released: sender stopping")
        if now + self.request_span >= claimed.lease_until:
            # It waited so long that its lease could run out mid-request and another sender
            # take the row over: give the row back instead (nothing was sent).
            return Outcome.later(claimed, now, counted=False,
                                 error="released: its lease was too short to send safely")
        return None

    async def _request(self, item: Planned) -> Outcome:
        assert item.call is not None
        claimed = item.claimed
        started = self.clock()
        try:
            async with asyncio.timeout(self.request_span.total_seconds()):
                response = await self.client.call(item.call)
        except WeComError as exc:
            return self._failed(item, exc)
        except TimeoutError:
            return self._failed(item, OutcomeUnknown(claimed.api, "took longer than its lease "
                                                                  "allows"))
        except Exception as exc:  # a bug, maybe after the request left: never resend blindly
            log.exception("outbox_send_crashed", api=claimed.api)
            return self._failed(item, OutcomeUnknown(claimed.api, f"{type(exc).__name__}"))
        log.info("outbox_sent", api=claimed.api, attempt=claimed.attempts,
                 ms=round((self.clock() - started).total_seconds() * 1000))
        return Outcome.sent(response, self.clock())

    def _failed(self, item: Planned, exc: WeComError) -> Outcome:
        assert item.call is not None
        outcome = decide(item.claimed, item.call, exc, self.policy, self.clock())
        fields = {"api": item.claimed.api, "attempt": item.claimed.attempts,
                  "outcome": outcome.label, "error": str(exc)}
        if outcome.loud:
            log.error("outbox_send_failed", **fields)
        else:
            log.warning("outbox_send_failed", **fields)
        return outcome

    async def _settle(self, planned: list[Planned]) -> None:
        blocks: dict[str, datetime] = {}
        for item in planned:
            if item.outcome is not None and (until := item.outcome.block_until) is not None:
                key = item.claimed.rate_key
                blocks[key] = max(until, blocks.get(key, until))
        async with self.db.unit_of_work() as session:
            for key, until in sorted(blocks.items()):  # key order, as in _book
                await ratelimit.block_until(session, key, until, self.limits.for_key(key))
            settled = []
            for item in planned:
                outcome = item.outcome
                assert outcome is not None
                if outcome is not LOST and await store.settle(session, item.claimed,
                                                               outcome.values):
                    self.counts[outcome.label] += 1
                    for observe in self.on_outcome:
                        observe(item.claimed, outcome, self.clock())
                    settled.append(item)
                else:
                    log.warning("outbox_lease_lost", outbox_id=item.claimed.id)
            await self._run_hooks(session, settled)

    async def _run_hooks(self, session: AsyncSession, settled: list[Planned]) -> None:
        """The settle hooks, kind by kind in registration order and by key within a kind, so
        hooks of several waves take their rows' locks in one order. All of them run in one
        savepoint; should one fail, they run again each in its own, so the failing hook
        loses only its own work, never the wave's outcomes or the other hooks' work."""
        calls = self._hook_calls(session, settled)
        if not calls:
            return
        try:
            async with session.begin_nested():
                for work, _ in calls:
                    await work()
        except Exception:
            for work, context in calls:
                await _contained(work, session, **context)

    def _hook_calls(self, session: AsyncSession, settled: list[Planned]
                    ) -> list[tuple[Callable[[], Awaitable[None]], dict[str, Any]]]:
        kinds, now = list(self.settled_hooks), self.clock()
        calls: list[tuple[Callable[[], Awaitable[None]], dict[str, Any]]] = []
        for item in sorted((i for i in settled if i.claimed.kind in self.settled_hooks),
                           key=lambda i: (kinds.index(i.claimed.kind), i.claimed.idempotency_key)):
            assert item.outcome is not None
            calls += [(functools.partial(hook, session, item.claimed, item.outcome, now),
                       {"outbox_id": item.claimed.id, "kind": item.claimed.kind})
                      for hook in self.settled_hooks[item.claimed.kind]]
        if calls:
            calls += [(functools.partial(after, session, now), {"kind": "after_settled"})
                      for after in self.after_hooks]
        return calls


async def _contained(work: Callable[[], Awaitable[None]], session: AsyncSession,
                     **context: Any) -> None:
    """Run a hook in a savepoint: a failure rolls back its own work only, and is logged."""
    try:
        async with session.begin_nested():
            await work()
    except Exception:
        log.exception("outbox_settle_hook_failed", **context)


def _by_rate_key(planned: list[Planned]) -> dict[str, list[Planned]]:
    groups: dict[str, list[Planned]] = {}
    for item in planned:
        groups.setdefault(item.claimed.rate_key, []).append(item)
    return groups
