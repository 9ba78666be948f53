"""The scheduler: APScheduler 3 in the service's event loop with a few static jobs (explicit
ids, module-level functions). With several replicas on PostgreSQL exactly one runs the jobs:
the one holding a session-level advisory lock on its own connection; the others try for it
every SOPBOT_LEADER_RETRY_S (`take_lead`), so if the leader dies (its connection closes and
PostgreSQL drops the lock) another takes over within seconds and posts what is due at once.
SQLite belongs to one process: it always leads.

Jobs run on the leader only; each is safe to run twice anyway (outbox keys), so a leader that
loses its lock mid-job posts nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.calendar.planner import SHANGHAI
from app.calendar.posting import post_due
from app.calendar.tracking import track
from app.db import Database, end_session, lock_engine, utcnow
from app.flows import Flows
from app.groups.migration import plan_migrations
from app.kf.dialog import drop_abandoned
from app.logs import get_logger
from app.verify.photos import discard
from app.verify.sweep import sweep_orphan_photos
from app.wecom.client import WeComClient

log = get_logger("sopbot.scheduler")
LEADER_LOCK = 0x50_42_43_41  # pg advisory lock key: "sopbot calendar"
TICK_S = 60
TRACK_S = 600  # mass tasks are looked at every ten minutes
MISFIRE_S = 45
LIFECYCLE_S = 3600  # zombie groups are looked for every hour
SWEEP_PHOTOS_S = 3600
EXPIRE_DIALOGS_S = 3600
LEAD_RETRY_S = 2.0  # how often a standby tries for the lead (SOPBOT_LEADER_RETRY_S)
HOLDING = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key "
               "AND pid = pg_backend_pid() AND granted")


class CalendarScheduler:
    def __init__(self, db: Database, flows: Flows, agent_id: int | None,
                 wecom: WeComClient | None = None, clock: Callable[[], datetime] = utcnow,
                 tick_s: float = TICK_S, robots: set[str] | None = None,
                 photo_dir: Path | None = None, lead_retry_s: float = LEAD_RETRY_S) -> None:
        self.db, self.flows, self.agent_id, self.clock = db, flows, agent_id, clock
        self.wecom, self.robots, self.photo_dir = wecom, robots, photo_dir
        self.tick_s, self.lead_retry_s = tick_s, lead_retry_s
        self.scheduler: AsyncIOScheduler | None = None
        self._lock_engine: AsyncEngine | None = None
        self._lock_conn: AsyncConnection | None = None

    def start(self) -> None:
        self.scheduler = AsyncIOScheduler(timezone=SHANGHAI)
        # misfire_grace_time: the event loop may be busy when a tick is due; a late tick still
        # runs (APScheduler's default of one second would drop it silently).
        self.scheduler.add_job(post_due_slots, "interval", seconds=self.tick_s, args=[self],
                               id="post_due_slots", coalesce=True, max_instances=1,
                               misfire_grace_time=MISFIRE_S,
                               next_run_time=datetime.now(SHANGHAI))
        self.scheduler.add_job(track_mass_tasks, "interval", seconds=TRACK_S, args=[self],
                               id="track_mass_tasks", coalesce=True, max_instances=1,
                               misfire_grace_time=MISFIRE_S)
        self.scheduler.add_job(plan_group_migrations, "interval", seconds=LIFECYCLE_S,
                               args=[self], id="plan_group_migrations", coalesce=True,
                               max_instances=1, misfire_grace_time=MISFIRE_S)
        self.scheduler.add_job(sweep_photos, "interval", seconds=SWEEP_PHOTOS_S, args=[self],
                               id="sweep_photos", coalesce=True, max_instances=1,
                               misfire_grace_time=MISFIRE_S)
        self.scheduler.add_job(expire_dialogs, "interval", seconds=EXPIRE_DIALOGS_S,
                               args=[self], id="expire_dialogs", coalesce=True,
                               max_instances=1, misfire_grace_time=MISFIRE_S)
        if not self.db.is_sqlite:
            self.scheduler.add_job(take_lead, "interval", seconds=self.lead_retry_s,
                                   args=[self], id="take_lead", coalesce=True,
                                   max_instances=1, misfire_grace_time=MISFIRE_S)
        self.scheduler.start()

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
        """Whether this process runs the jobs now (taking the lead if it is free)."""
        if self.db.is_sqlite:
            return True
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

    async def _let_go(self) -> None:
        """Give the lead up: closing the lock's connection ends its session and the lock."""
        if self._lock_conn is not None:
            conn, self._lock_conn = self._lock_conn, None
            await end_session(conn)


async def take_lead(scheduler: CalendarScheduler) -> None:
    """Job (every replica, PostgreSQL): take the lead as soon as it is free. A new leader
    posts what is due at once: the minute its predecessor died in may hold a slot."""
    was_leading = scheduler.leading
    if await scheduler.lead() and not was_leading and scheduler.scheduler is not None:
        scheduler.scheduler.modify_job("post_due_slots", next_run_time=datetime.now(SHANGHAI))


async def post_due_slots(scheduler: CalendarScheduler) -> None:
    """Job: queue the calendar's due deliveries (leader only)."""
    flows = scheduler.flows
    if not (flows.calendar.segments or flows.onboarding or flows.talks.talks) \
            or not await scheduler.lead():
        return
    try:
        report = await post_due(scheduler.db, scheduler.flows.calendar, scheduler.clock(),
                                scheduler.agent_id, scheduler.flows.onboarding,
                                scheduler.robots, scheduler.flows.talks)
    except Exception:
        log.exception("calendar_post_failed")
        return
    if report.queued or report.skipped:
        log.info("calendar_posted", queued=report.queued, skipped=len(report.skipped))


async def track_mass_tasks(scheduler: CalendarScheduler) -> None:
    """Job: follow the open mass tasks (confirmed, reminded, missed), leader only."""
    if scheduler.wecom is None or not await scheduler.lead():
        return
    try:
        tracked = await track(scheduler.db, scheduler.wecom, scheduler.clock())
    except Exception:
        log.exception("calendar_tracking_failed")
        return
    if tracked.confirmed or tracked.reminded or tracked.missed:
        log.info("calendar_tasks_tracked", confirmed=tracked.confirmed,
                 reminded=tracked.reminded, missed=tracked.missed)


async def plan_group_migrations(scheduler: CalendarScheduler) -> None:
    """Job: zombie groups get their migration plan (leader only)."""
    if not await scheduler.lead():
        return
    try:
        async with scheduler.db.unit_of_work() as session:
            planned = await plan_migrations(session, scheduler.flows, scheduler.clock(),
                                            scheduler.agent_id)
    except Exception:
        log.exception("group_migration_failed")
        return
    if planned:
        log.info("group_migrations_planned", count=len(planned))


async def sweep_photos(scheduler: CalendarScheduler) -> None:
    """Job: delete verification photos no row names any more (leader only)."""
    if scheduler.photo_dir is None or not await scheduler.lead():
        return
    try:
        deleted = await sweep_orphan_photos(scheduler.db, scheduler.photo_dir, scheduler.clock())
    except Exception:
        log.exception("photo_sweep_failed")
        return
    if deleted:
        log.info("orphan_photos_deleted", count=len(deleted))


async def expire_dialogs(scheduler: CalendarScheduler) -> None:
    """Job: kf verification dialogs abandoned for a week go, with their photos (leader only)."""
    if not await scheduler.lead():
        return
    try:
        async with scheduler.db.unit_of_work() as session:
            count, names = await drop_abandoned(session, scheduler.clock())
    except Exception:
        log.exception("dialog_expiry_failed")
        return
    if scheduler.photo_dir is not None:
        discard(names, scheduler.photo_dir)
    if count:
        log.info("abandoned_dialogs_dropped", count=count, photos=len(names))
