"""How current the chat archive reader is: what /healthz, /metrics and the console show.

Lag is the time since the reader last read to the end (a short page), or since it first ran.
WeCom keeps archive data for a few days only (design for 3), so lag past
SOPBOT_ARCHIVE_MAX_LAG_H (12 h by default) fails the health check long before anything is
lost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.models import ArchiveQuarantine, ArchiveReader

# Past this the lifecycle stops reading the archive's silence as a group's (a stopped reader,
# lapsed seats): no group is judged weak on it. Twice the health check's default.
STALE_AFTER_H = 24.0


@dataclass(frozen=True)
class ArchiveStatus:
    seq: int
    lag_s: float | None  # None: not known (a reader row from before 0024 never caught up)
    quarantined: int  # records waiting for a replay
    failures: int
    last_error: str | None
    last_msgtime: datetime | None
    gaps: int

    def lagging(self, max_lag_h: float) -> bool:
        return self.lag_s is not None and self.lag_s > max_lag_h * 3600


async def archive_status(session: AsyncSession, now: datetime) -> ArchiveStatus | None:
    """None when no archive reader ever ran here."""
    reader = await session.scalar(select(ArchiveReader).order_by(ArchiveReader.id).limit(1))
    if reader is None:
        return None
    quarantined = await session.scalar(select(func.count()).where(
        ArchiveQuarantine.replayed_at.is_(None))) or 0
    # A reader that never read to the end is as late as it is old: a first backlog that jams
    # must fail the health check too.
    since = reader.caught_up_at or reader.created_at
    lag = (now - since).total_seconds() if since else None
    return ArchiveStatus(reader.seq, lag, quarantined, reader.failures, reader.last_error,
                         reader.last_msgtime, reader.gaps)
