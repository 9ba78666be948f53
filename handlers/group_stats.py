"""WeCom's per-owner customer-group figures (groupchat/statistic), read once a day: the
activity signal shown beside the groups the chat archive does not cover."""

from __future__ import annotations

from app.engine.bot.env import Env
from app.engine.bot.router import Router
from app.engine.logs import get_logger
from app.flows import Flows
from app.groups.owner_stats import read_owner_stats

log = get_logger("sopbot.scheduler")
OWNER_STATS_S = 3600  # hourly; a day already stored costs one query


async def read_owner_group_stats(env: Env[Flows]) -> None:
    """Store yesterday's groupchat/statistic figures of every owner of a live group."""
    if env.wecom is None or env.settings.contact_secret is None:
        return
    try:
        await read_owner_stats(env.db, env.wecom, env.clock())
    except Exception:
        log.exception("owner_stats_failed")


def router() -> Router:
    group_stats = Router("group_stats")
    # On taking the lead too: a service started in the morning has yesterday at once.
    group_stats.every(OWNER_STATS_S, read_owner_group_stats, on_lead=True)
    return group_stats
