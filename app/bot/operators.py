"""What the operator commands do, apart from parsing and answering (handlers/commands.py):
funnel figures, the review queue, announcements as mass-send tasks. Functions flush only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.funnel.report import ReportError, format_report, gather, parse_by, parse_since
from app.groups.models import LIVE, CustomerGroup
from app.logs import mask_phones
from app.outbox import store as outbox
from app.verify.models import PENDING, Verification
from app.wecom.api import Text
from app.wecom.api_outreach import AddMsgTemplate

ANNOUNCE_KIND = "announcement"
MAX_CHATS_PER_TASK = 2000  # add_msg_template's chat_id_list


async def stats(session: AsyncSession, args: list[str], now: datetime) -> str:
    """/stats [dimension] [period]: the funnel report; ReportError for bad arguments."""
    by = next((a for a in args if not a[:1].isdigit()), None)
    since = next((a for a in args if a[:1].isdigit()), "7d")
    if len(args) > 2:
        raise ReportError("too many arguments")
    parse_by(by)
    since_at = now - parse_since(since)
    return format_report(await gather(session, by, since_at), by, since, since_at)


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


async def announce(session: AsyncSession, target: str, text: str, key: str) -> tuple[int, int]:
    """A mass-send task per group owner for the live groups of a segment (or one group, by
    name or chat id); (groups, owners). Each owner confirms in the client; nothing is posted
    into a customer group otherwise (DESIGN.md §1)."""
    groups = list(await session.scalars(select(CustomerGroup).where(
        CustomerGroup.status == LIVE,
        or_(CustomerGroup.segment == target, CustomerGroup.name == target,
            CustomerGroup.chat_id == target)).order_by(CustomerGroup.id)))
    by_owner: dict[str, list[str]] = {}
    for group in groups:
        if group.owner:
            by_owner.setdefault(group.owner, []).append(group.chat_id)
    for owner, chat_ids in sorted(by_owner.items()):
        for start in range(0, len(chat_ids), MAX_CHATS_PER_TASK):
            call = AddMsgTemplate(chat_type="group", sender=owner, text=Text(content=text),
                                  chat_id_list=chat_ids[start:start + MAX_CHATS_PER_TASK])
            await outbox.enqueue(session, f"{key}:{owner}:{start}", call, kind=ANNOUNCE_KIND)
    return sum(len(c) for c in by_owner.values()), len(by_owner)
