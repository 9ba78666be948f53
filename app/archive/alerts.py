"""The operators' app message about a chat archive record that could not be opened: once per
record (the outbox key), for records quarantined in the last day (older ones were told, or
predate the operators' configuration)."""

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
    """Queue the operators' message for each record quarantined lately; how many were new."""
    if not operators:
        return 0
    told = 0
    for row in await session.scalars(select(ArchiveQuarantine).where(
            ArchiveQuarantine.created_at >= now - RECENT,
            ArchiveQuarantine.replayed_at.is_(None)).order_by(ArchiveQuarantine.seq)):
        text = texts.quarantined.format(seq=row.seq, msgid=row.msgid, reason=row.reason)
        told += await outbox.enqueue(session, f"archive-quarantine:{row.msgid}", SendMessage(
            agentid=agent_id, touser="|".join(sorted(operators)), msgtype="text",
            text=Text(content=text)), kind=KIND)
    return told
