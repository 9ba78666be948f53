"""The scheduler: APScheduler 3 in the service's event loop running the jobs the behaviours
registered (`Router.every`). With several replicas on PostgreSQL exactly one runs them: the
process holding a session-level advisory lock (taken on a connection of its own, so it lasts
as long as that connection, and is dropped by the server when the process dies). A standby
tries for the lead every few seconds; on SQLite the process owns the file and always leads.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.engine.bot.env import Env
from app.engine.bot.router import ScheduledJob
from app.engine.config import SHANGHAI
from app.engine.db import end_session, lock_engine
from app.engine.logs import get_logger

log = get_logger("sopbot.scheduler")
LEADER_LOCK = 0x50_42_43_41  # pg advisory lock key: "sopbot calendar"
MISFIRE_S = 45
LEAD_RETRY_S = 2.0  # how often a standby tries for the lead (SOPBOT_LEADER_RETRY_S)
HOLDING = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key "
               "AND pid = pg_backend_pid() AND granted")


class Scheduler:
    def __init__(self, env: Env[Any], jobs: list[ScheduledJob],
                 lead_retry_s: float = LEAD_RETRY_S) -> None:
        self.env, self.db, self.lead_retry_s = env, env.db, lead_retry_s
        self.jobs = {job.name: job for job in jobs}
        self.scheduler: AsyncIOScheduler | None = None
        self._lock_engine: AsyncEngine | None = None
        self._lock_conn: AsyncConnection | None = None
        self._lead_lock = asyncio.Lock()

    def start(self) -> None:
        self.scheduler = AsyncIOScheduler(timezone=SHANGHAI)
        for job in self.jobs.values():
            # misfire_grace_time: the event loop may be busy when a run is due; a late run
            # still happens (APScheduler's default of one second would drop it silently).
            self.scheduler.add_job(functools.partial(self.run_job, job.name), "interval",
                                   seconds=job.every_s, id=job.name, coalesce=True,
                                   max_instances=1, misfire_grace_time=MISFIRE_S,
                                   **({"next_run_time": datetime.now(SHANGHAI)}
                                      if job.on_lead else {}))
        if not self.db.is_sqlite:
            self.scheduler.add_job(self.take_lead, "interval", seconds=self.lead_retry_s,
                                   id="take_lead", coalesce=True, max_instances=1,
                                   misfire_grace_time=MISFIRE_S)
        self.scheduler.start()

    async def run_job(self, name: str) -> None:
        """Run the job now if this process leads (a standby runs nothing)."""
        if await self.lead():
            await self.jobs[name].run(self.env)

    @property
    def alive(self) -> bool | None:
        return None if self.scheduler is None else self.scheduler.running

    async def stop(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self._let_go()
        if self._lock_engine is not None:
            await self._lock_engine.dispose()
            self._lock_engine = None

    @property
    def leading(self) -> bool:
        """Whether this process held the lead when it last looked."""
        return self.db.is_sqlite or self._lock_conn is not None

    async def lead(self) -> bool:
        """Whether this process runs the jobs now (taking the lead if it is free). One caller at
        a time: two jobs due at start would otherwise both try for the lock, and the second's
        try, refused by the first's, would skip its run."""
        if self.db.is_sqlite:
            return True
        async with self._lead_lock:
            return await self._lead()

    async def _lead(self) -> bool:
        if self._lock_conn is not None:
            try:  # still connected, and the lock still ours (not only a live connection)
                holding = (await self._lock_conn.execute(HOLDING, {"key": LEADER_LOCK}))
                held = bool(holding.scalar())
                await self._lock_conn.commit()  # never left idle in a transaction
                if held:
                    return True
            except Exception:
                pass
            log.warning("scheduler_lead_lost")
            await self._let_go()
        if self._lock_engine is None:
            self._lock_engine = lock_engine(self.db.url)
        conn = await self._lock_engine.connect()
        taken = (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                    {"key": LEADER_LOCK})).scalar()
        await conn.commit()  # the session-level lock outlives this transaction
        if not taken:
            await conn.close()
            return False
        self._lock_conn = conn
        log.info("scheduler_leading")
        return True

    async def take_lead(self) -> None:
        """Every replica (PostgreSQL): take the lead as soon as it is free. A new leader runs
        its on-lead jobs at once: the minute its predecessor died in may hold a slot."""
        was_leading = self.leading
        if await self.lead() and not was_leading and self.scheduler is not None:
            for job in self.jobs.values():
                if job.on_lead:
                    self.scheduler.modify_job(job.name, next_run_time=datetime.now(SHANGHAI))

    async def _let_go(self) -> None:
        """Give the lead up: closing the lock's connection ends its session and the lock."""
        if self._lock_conn is not None:
            conn, self._lock_conn = self._lock_conn, None
            await end_session(conn)
