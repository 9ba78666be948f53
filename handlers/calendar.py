"""The posting calendar: due slots queued every minute, mass tasks followed, and what WeCom
answered to a mass task recorded when the outbox settles it."""

from __future__ import annotations

from app.calendar.posting import POST_KIND, post_due
from app.calendar.tracking import task_created, track
from app.engine.bot.env import Env
from app.engine.bot.router import Router
from app.engine.logs import get_logger
from app.flows import Flows

log = get_logger("sopbot.scheduler")
TICK_S = 60
TRACK_S = 600  # mass tasks are looked at every ten minutes


async def post_due_slots(env: Env[Flows]) -> None:
    """Queue the calendar's due deliveries (calendar columns, onboarding, talks)."""
    flows = env.flows
    if not (flows.calendar.segments or flows.onboarding or flows.talks.talks):
        return
    try:
        report = await post_due(env.db, flows.calendar, env.clock(), env.settings.agent_id,
                                flows.onboarding, set(env.settings.robot_keys), flows.talks)
    except Exception:
        log.exception("calendar_post_failed")
        return
    if report.queued or report.skipped:
        log.info("calendar_posted", queued=report.queued, skipped=len(report.skipped))


async def track_mass_tasks(env: Env[Flows]) -> None:
    """Follow the open mass tasks (confirmed, reminded, missed)."""
    if env.wecom is None:
        return
    try:
        tracked = await track(env.db, env.wecom, env.clock())
    except Exception:
        log.exception("calendar_tracking_failed")
        return
    if tracked.confirmed or tracked.reminded or tracked.missed:
        log.info("calendar_tasks_tracked", confirmed=tracked.confirmed,
                 reminded=tracked.reminded, missed=tracked.missed)


def router() -> Router:
    calendar = Router("calendar")
    calendar.every(TICK_S, post_due_slots, on_lead=True)
    calendar.every(TRACK_S, track_mass_tasks)
    calendar.on_settled(POST_KIND, lambda env: task_created)
    return calendar
