"""The operators' app message about chat archive records that could not be opened: at most one
an hour, with how many were quarantined that hour and the first one's reason (a key rotated
without SOPBOT_ARCHIVE_KEYS quarantines every record: one message, not thousands). One query a
run; the outbox key makes each hour's message once."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.flows import ArchiveTexts
from app.archive.models import ArchiveQuarantine
from app.engine.outbox import store as outbox
from app.engine.wecom.api import SendMessage, Text

KIND = "archive_alert"
RECENT = timedelta(days=1)


async def tell_quarantined(session: AsyncSession, texts: ArchiveTexts, agent_id: int,
                           operators: frozenset[str], now: datetime) -> int:
    """Queue the operators' message for each hour of the last day with quarantined records
    (once per hour: the outbox key); how many were new."""
    if not operators:
        return 0
    rows = (await session.execute(
        select(ArchiveQuarantine.seq, ArchiveQuarantine.msgid, ArchiveQuarantine.reason,
               ArchiveQuarantine.created_at)
        .where(ArchiveQuarantine.created_at >= now - RECENT,
               ArchiveQuarantine.replayed_at.is_(None))
        .order_by(ArchiveQuarantine.created_at, ArchiveQuarantine.seq))).all()
    hours: dict[str, list[tuple[int, str, str]]] = {}
    for seq, msgid, reason, at in rows:
        hours.setdefault(at.strftime("%Y-%m-%dT%H"), []).append((seq, msgid, reason))
    told = 0
    for hour, records in hours.items():
        seq, msgid, reason = records[0]
        text = texts.quarantined.format(seq=seq, msgid=msgid, reason=reason,
                                        count=len(records))
        told += await outbox.enqueue(session, f"archive-quarantine:{hour}", SendMessage(
            agentid=agent_id, touser="|".join(sorted(operators)), msgtype="text",
            text=Text(content=text)), kind=KIND)
    return told

