"""What the operator commands do, apart from parsing and answering (handlers/commands.py):
funnel figures, the review queue, announcements as mass-send tasks within WeCom's one mass
message per group a day (held for the operator's choice when it is taken). Functions flush
only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.flows import Flows
from app.funnel.labels import value_labels
from app.funnel.report import ReportError, format_report, gather, parse_by, parse_since
from app.logs import mask_phones
from app.verify.models import PENDING, Verification


async def stats(session: AsyncSession, args: list[str], now: datetime,
                flows: Flows | None = None) -> str:
    """/stats [dimension] [period]: the funnel report, its channels, slots and segments by
    their Chinese labels as in `sopbot funnel`; ReportError for bad arguments."""
    by = next((a for a in args if not a[:1].isdigit()), None)
    since = next((a for a in args if a[:1].isdigit()), "7d")
    if len(args) > 2:
        raise ReportError("too many arguments")
    parse_by(by)
    since_at = now - parse_since(since)
    labels = value_labels(flows, by) if flows is not None else None
    return format_report(await gather(session, by, since_at), by, since, since_at, labels)


@dataclass(frozen=True)
class PendingReview:
    id: int
    phone: str  # masked
    identity_type: str
    region: str
    checks: tuple[dict[str, object], ...] = ()  # why it waits (app/verify/checks.py)


async def pending_reviews(session: AsyncSession,
                          limit: int = 10) -> tuple[int, list[PendingReview]]:
    count = await session.scalar(select(func.count()).where(Verification.status == PENDING))
    rows = await session.scalars(select(Verification).where(Verification.status == PENDING)
                                 .order_by(Verification.id).limit(limit))
    return count or 0, [PendingReview(r.id, mask_phones(r.phone), r.identity_type, r.region,
                                      tuple(r.checks or ())) for r in rows]
