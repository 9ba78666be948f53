"""What happens inside the customer groups, seen through the chat archive (会话内容存档).

A msgaudit_notify wakes the archive reader (app/archive/reader.py); each page it reads is
handed, in the transaction that stores it, to the steps below in this order: activity rollups
first (the others read them), then questions, newcomers' self-introductions, group rules.
Message text is forgotten after SOPBOT_ARCHIVE_TEXT_DAYS (the rollups stay)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.archive import activity, alerts, store
from app.archive.newcomers import build_newcomers_step
from app.archive.questions import build_questions_step
from app.archive.rules import build_rules_step
from app.engine.bot.context import Ctx
from app.engine.bot.env import Env
from app.engine.bot.router import ArchivePageStep, Router
from app.engine.logs import get_logger
from app.engine.wecom.events import MsgAuditNotify
from app.flows import Flows

log = get_logger("sopbot.archive")


async def note_archive_news(event: MsgAuditNotify, ctx: Ctx[Flows]) -> None:
    """The archive has new data: the reader reads it once this commits."""
    await store.note_news(ctx.session, ctx.settings.corp_id)


def activity_step(env: Env[Any]) -> ArchivePageStep:
    return activity.count_page


async def purge_archive_text(env: Env[Flows]) -> None:
    """Forget archived message text older than SOPBOT_ARCHIVE_TEXT_DAYS (rollups stay)."""
    before = env.clock() - timedelta(days=env.settings.archive_text_days)
    async with env.db.unit_of_work() as session:
        purged = await store.purge_text(session, before)
    if purged:
        log.info("archive_text_purged", messages=purged)


async def tell_quarantined(env: Env[Flows]) -> None:
    """Tell the operators about chat archive records quarantined lately (once each)."""
    texts, settings = env.flows.group_rules.archive, env.settings
    if texts is None or settings.agent_id is None or env.settings.archive_secret is None:
        return
    async with env.db.unit_of_work() as session:
        told = await alerts.tell_quarantined(session, texts, settings.agent_id,
                                             settings.operators, env.clock())
    if told:
        log.warning("archive_quarantine_told", records=told)


def router() -> Router:
    r = Router("group_talk")
    r.add(MsgAuditNotify, note_archive_news)
    r.on_archive_page(activity_step)  # first: the steps after it read its rows
    r.on_archive_page(build_questions_step)
    r.on_archive_page(build_newcomers_step)
    r.on_archive_page(build_rules_step)  # last: reads the answers and introductions marked
    r.every(3600, purge_archive_text, on_lead=True)
    r.every(60, tell_quarantined)
    return r
