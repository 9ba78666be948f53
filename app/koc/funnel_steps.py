"""The funnel's referral steps by referrer: how far the people each recommender brought got.

The rules:
- A referral counts in the period its friend add (`added_at`) fell in; the later steps say
  where those referees stand now (a cohort, so each step is a subset of the one before).
- `referred`: first touches through the recommender's code (every referral but `not_first`,
  so the self-scans and people who were members already are here, and rejected below).
- `verified`: the referee passed verification as a business: linked and approved, routed or
  in a group now, or their `approved` funnel event exists (they may have left since), or the
  referral was credited.
- `joined`: the referee is in a group, or their `joined` funnel event exists, or credited.
- `credited`: credited and not revoked (`revoked` counts the others); `flagged`: waiting for
  an operator; `pending`: waiting for the settle job; `rejected`: by reason.
- Recommenders are named `#<member id>` plus their group nickname when known; the rows are in
  order of people referred, then credited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Exists, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.funnel import steps
from app.funnel.models import FunnelEvent
from app.koc import honor
from app.koc.models import CREDITED, FLAGGED, NOT_FIRST, PENDING, REJECTED, Recommender, Referral
from app.koc.models import ReferralCredit as Credit
from app.members.models import APPROVED, JOINED, LINKED, ROUTED, Member

VERIFIED_NOW = (APPROVED, ROUTED, JOINED)


@dataclass
class ReferrerSteps:
    recommender_id: int
    member_id: int
    name: str = ""
    referred: int = 0
    verified: int = 0
    joined: int = 0
    credited: int = 0
    revoked: int = 0
    flagged: int = 0
    pending: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason → count

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


@dataclass(frozen=True)
class _Row:
    recommender_id: int
    member_id: int
    status: str
    reason: str | None
    link_state: str | None
    member_status: str
    approved: bool
    joined: bool
    revoked: bool


async def by_referrer(session: AsyncSession, since: datetime | None,
                      until: datetime | None = None,
                      limit: int | None = None) -> list[ReferrerSteps]:
    """Each recommender with referrals added in [since, until) and their steps (see the
    module's rules); the first `limit` of them."""
    found: dict[int, ReferrerSteps] = {}
    for row in await _rows(session, since, until):
        one = found.setdefault(row.recommender_id,
                               ReferrerSteps(row.recommender_id, row.member_id))
        _count(one, row)
    ranked = sorted(found.values(), key=lambda s: (-s.referred, -s.credited, s.member_id))
    ranked = ranked[:limit] if limit is not None else ranked
    await _name(session, ranked)
    return ranked


async def _name(session: AsyncSession, ranked: list[ReferrerSteps]) -> None:
    """`#<member id>` plus the group nickname when known (one query for all of them)."""
    rows = await session.execute(select(Member.id, Member.external_userid).where(
        Member.id.in_([one.member_id for one in ranked])))
    userids: dict[int, str] = {member_id: userid for member_id, userid in rows}
    known = await honor.nicknames(session, list(userids.values()))
    for one in ranked:
        nick = known.get(userids.get(one.member_id, ""))
        one.name = f"#{one.member_id} {nick}" if nick else f"#{one.member_id}"


def _count(one: ReferrerSteps, row: _Row) -> None:
    one.referred += 1
    credited = row.status == CREDITED
    verified = credited or row.approved or (
        row.link_state == LINKED and row.member_status in VERIFIED_NOW)
    one.verified += verified
    one.joined += verified and (credited or row.joined or row.member_status == JOINED)
    one.credited += credited and not row.revoked
    one.revoked += credited and row.revoked
    one.flagged += row.status == FLAGGED
    one.pending += row.status == PENDING
    if row.status == REJECTED:
        reason = row.reason or ""
        one.rejected[reason] = one.rejected.get(reason, 0) + 1


async def _rows(session: AsyncSession, since: datetime | None,
                until: datetime | None) -> list[_Row]:
    def reached(step: str) -> Exists:
        return exists().where(FunnelEvent.member_id == Referral.referee_member_id,
                              FunnelEvent.step == step)
    revoked = exists().where(Credit.referral_id == Referral.id, Credit.revoked_at.is_not(None))
    query = (select(Referral.recommender_id, Recommender.member_id, Referral.status,
                    Referral.reason, Member.link_state, Member.status,
                    reached(steps.APPROVED), reached(steps.JOINED), revoked)
             .join(Recommender, Recommender.id == Referral.recommender_id)
             .join(Member, Member.id == Referral.referee_member_id)
             .where(Referral.status != NOT_FIRST))
    if since is not None:
        query = query.where(Referral.added_at >= since)
    if until is not None:
        query = query.where(Referral.added_at < until)
    return [_Row(*row) for row in (await session.execute(query)).all()]
