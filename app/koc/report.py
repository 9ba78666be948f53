"""What the faces read of the referral programme: the leaderboard, the referrals and reward
queues, the current KOCs, the API's pages and a recommender's own view. Reads only.

Every list is a page: the rows are chosen through an index (referral (status, id) and
(recommender_id, added_at), koc_reward (status, id) and (recommender_id), referral_credit
(recommender_id, month)) and only the page's rows are joined to their members, so a page costs
the same at 100,000 members as at 100. The leaderboard ranks by credited referrals that were not
revoked, then by who became a recommender first.

`referred` counts the friends who came through the recommender's code as their first touch of
the programme (a friend another recommender brought first is theirs, `not_first`). A recommender
reads their referrals coarsely: a flagged one waits like a pending one (the velocity rules are
the operators' business), and a rejection, a second touch and a revoked credit alike "do not
count".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.directory.models import PlatformUser
from app.groups.models import GroupMember
from app.koc.honor import nicknames
from app.koc.models import (
    CREDITED,
    FLAGGED,
    KOC,
    NOT_FIRST,
    PENDING,
    KocAssignment,
    KocMember,
    Recommender,
    Referral,
    ReferralCredit,
    Reward,
)
from app.members.models import Member

PAGE_MAX = 500
OWN_MAX = 200  # a recommender's page lists their newest referrals, this many
KOCS_MAX = 200
# How a recommender reads a referral of theirs.
SHOWN_PENDING, SHOWN_CREDITED, SHOWN_NOT_COUNTED = "pending", "credited", "not_counted"


@dataclass(frozen=True)
class Person:
    """A member as the console names them: their group nickname or else the directory's name,
    their phone (to be masked by whoever shows it) and their external userid."""

    member_id: int
    external_userid: str
    name: str | None
    phone: str | None
    segment: str | None


@dataclass(frozen=True)
class RewardBrief:
    id: int
    kind: str
    name: str
    label: str
    period: str | None
    status: str
    segment: str | None  # a rank reward's


@dataclass
class Counts:
    referred: int = 0
    credited: int = 0
    flagged: int = 0
    pending: int = 0


@dataclass(frozen=True)
class RecommenderRow:
    id: int
    short_id: str
    code: str
    source: str
    active: bool
    created_at: datetime
    person: Person
    counts: Counts
    rewards: list[RewardBrief] = field(default_factory=list)


def _person(member: Member, name: str | None) -> Person:
    return Person(member.id, member.external_userid, name, member.phone, member.segment)


def _with_name(query: Select, member: type[Member] = Member) -> Select:
    """The member's name as operators know it: their group nickname (what the groups and the
    funnel's referrer list show), else the platform directory's name."""
    directory = aliased(PlatformUser)
    nickname = (select(GroupMember.nickname)
                .where(GroupMember.userid == member.external_userid,
                       GroupMember.nickname.is_not(None))
                .order_by(GroupMember.joined_at.desc()).limit(1).scalar_subquery())
    return query.add_columns(func.coalesce(nickname, directory.name)).outerjoin(
        directory, directory.platform_user_id == member.platform_user_id)


async def _counts(session: AsyncSession, ids: list[int]) -> dict[int, Counts]:
    """Each recommender's referrals by status and their credits not revoked."""
    found = {i: Counts() for i in ids}
    rows = await session.execute(
        select(Referral.recommender_id, Referral.status, func.count())
        .where(Referral.recommender_id.in_(ids)).group_by(Referral.recommender_id,
                                                           Referral.status))
    for rec_id, status, n in rows:
        entry = found[rec_id]
        entry.referred += n if status != NOT_FIRST else 0
        entry.flagged += n if status == FLAGGED else 0
        entry.pending += n if status == PENDING else 0
    credits = await session.execute(
        select(ReferralCredit.recommender_id, func.count())
        .where(ReferralCredit.recommender_id.in_(ids), ReferralCredit.revoked_at.is_(None))
        .group_by(ReferralCredit.recommender_id))
    for rec_id, n in credits:
        found[rec_id].credited = n
    return found


async def _rewards(session: AsyncSession, ids: list[int]) -> dict[int, list[RewardBrief]]:
    found: dict[int, list[RewardBrief]] = {i: [] for i in ids}
    for r in await session.scalars(select(Reward).where(Reward.recommender_id.in_(ids))
                                   .order_by(Reward.id)):
        found[r.recommender_id].append(
            RewardBrief(r.id, r.kind, r.name, r.label, r.period, r.status, r.segment))
    return found


async def _rows(session: AsyncSession, ids: list[int]) -> list[RecommenderRow]:
    """The recommenders with these ids, in the order given, with counts and rewards."""
    if not ids:
        return []
    rows = await session.execute(_with_name(
        select(Recommender, Member).join(Member, Member.id == Recommender.member_id)
        .where(Recommender.id.in_(ids))))
    by_id = {rec.id: (rec, member, name) for rec, member, name in rows}
    counts, rewards = await _counts(session, ids), await _rewards(session, ids)
    return [RecommenderRow(rec.id, rec.short_id, rec.code, rec.source, rec.active,
                           rec.created_at, _person(member, name), counts[i], rewards[i])
            for i in ids if i in by_id for rec, member, name in [by_id[i]]]


async def leaderboard(session: AsyncSession, limit: int,
                      offset: int = 0) -> tuple[int, list[RecommenderRow]]:
    """Every recommender, most credited referrals first (ties: who enrolled first); the total
    and one page."""
    total = await session.scalar(select(func.count()).select_from(Recommender)) or 0
    credited = (select(ReferralCredit.recommender_id.label("rid"), func.count().label("n"))
                .where(ReferralCredit.revoked_at.is_(None))
                .group_by(ReferralCredit.recommender_id).subquery())
    ids = list(await session.scalars(
        select(Recommender.id).outerjoin(credited, credited.c.rid == Recommender.id)
        .order_by(func.coalesce(credited.c.n, 0).desc(), Recommender.id)
        .limit(max(0, min(limit, PAGE_MAX))).offset(max(0, offset))))
    return total, await _rows(session, ids)


async def api_page(session: AsyncSession, after: int | None,
                   limit: int) -> tuple[list[RecommenderRow], int | None]:
    """Recommenders in id order after `after`; the page and the cursor of the next (None after
    the last)."""
    limit = max(1, min(limit, PAGE_MAX))
    query = select(Recommender.id).order_by(Recommender.id).limit(limit + 1)
    if after is not None:
        query = query.where(Recommender.id > after)
    ids = list(await session.scalars(query))
    more = len(ids) > limit
    ids = ids[:limit]
    return await _rows(session, ids), ids[-1] if more else None


@dataclass(frozen=True)
class ReferralRow:
    id: int
    status: str
    reason: str | None
    added_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    recommender_id: int
    short_id: str
    referrer: Person
    referee: Person
    referee_status: str
    credit_id: int | None
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None


def _referral_query() -> Select:
    referrer, referee = aliased(Member), aliased(Member)
    query = (select(Referral, Recommender.short_id, referrer, referee, ReferralCredit)
             .join(Recommender, Recommender.id == Referral.recommender_id)
             .join(referrer, referrer.id == Recommender.member_id)
             .join(referee, referee.id == Referral.referee_member_id)
             .outerjoin(ReferralCredit, ReferralCredit.referral_id == Referral.id))
    return _with_name(_with_name(query, referrer), referee)


async def _referral_rows(session: AsyncSession, status: str | None, exclude: str | None,
                         limit: int, offset: int) -> list[ReferralRow]:
    """One page, newest first: its ids through the index alone (a deep page skips index
    entries, not joined rows), then only those rows joined to their people."""
    ids = select(Referral.id).order_by(Referral.id.desc()).limit(limit).offset(offset)
    if status is not None:
        ids = ids.where(Referral.status == status)
    if exclude is not None:
        ids = ids.where(Referral.status != exclude)
    page = list(await session.scalars(ids))
    if not page:
        return []
    query = _referral_query().where(Referral.id.in_(page)).order_by(Referral.id.desc())
    found = []
    for ref, short_id, referrer, referee, credit, referrer_name, referee_name in (
            await session.execute(query)):
        found.append(ReferralRow(
            ref.id, ref.status, ref.reason, ref.added_at, ref.decided_by, ref.decided_at,
            ref.recommender_id, short_id, _person(referrer, referrer_name),
            _person(referee, referee_name), referee.status,
            credit.id if credit else None, credit.revoked_at if credit else None,
            credit.revoked_by if credit else None, credit.revoke_reason if credit else None))
    return found


async def count_referrals(session: AsyncSession, status: str | None = None) -> int:
    query = select(func.count()).select_from(Referral)
    if status is not None:
        query = query.where(Referral.status == status)
    return await session.scalar(query) or 0


async def referrals(session: AsyncSession, status: str | None, limit: int,
                    offset: int = 0) -> tuple[int, list[ReferralRow]]:
    """Referrals of one status, newest first; of every status, the flagged ones (an
    operator's to decide) first. The total and one page."""
    limit, offset = max(0, min(limit, PAGE_MAX)), max(0, offset)
    if status is not None:
        return (await count_referrals(session, status),
                await _referral_rows(session, status, None, limit, offset))
    flagged = await count_referrals(session, FLAGGED)
    rows = (await _referral_rows(session, FLAGGED, None, limit, offset)
            if offset < flagged else [])
    if len(rows) < limit:
        rows += await _referral_rows(session, None, FLAGGED, limit - len(rows),
                                     max(0, offset - flagged))
    return await count_referrals(session), rows


@dataclass(frozen=True)
class RewardRow:
    reward: Reward
    short_id: str
    person: Person


async def count_rewards(session: AsyncSession, status: str | None = None) -> int:
    query = select(func.count()).select_from(Reward)
    if status is not None:
        query = query.where(Reward.status == status)
    return await session.scalar(query) or 0


async def reward_ledger(session: AsyncSession, status: str | None, limit: int,
                        offset: int = 0) -> tuple[int, list[RewardRow]]:
    """The ledger newest first, of one status or all; the total and one page."""
    query = _with_name(
        select(Reward, Recommender.short_id, Member)
        .join(Recommender, Recommender.id == Reward.recommender_id)
        .join(Member, Member.id == Recommender.member_id)
        .order_by(Reward.id.desc()).limit(max(0, min(limit, PAGE_MAX))).offset(max(0, offset)))
    if status is not None:
        query = query.where(Reward.status == status)
    rows = [RewardRow(reward, short_id, _person(member, name))
            for reward, short_id, member, name in await session.execute(query)]
    return await count_rewards(session, status), rows


@dataclass(frozen=True)
class KocRow:
    person: Person
    promoted_by: str
    promoted_at: datetime
    assignments: int


async def current_kocs(session: AsyncSession, limit: int = KOCS_MAX) -> list[KocRow]:
    """The members who are KOCs now, last promoted first, with how many tasks they were given."""
    tasks = (select(KocAssignment.member_id.label("mid"), func.count().label("n"))
             .group_by(KocAssignment.member_id).subquery())
    rows = await session.execute(_with_name(
        select(KocMember, Member, func.coalesce(tasks.c.n, 0))
        .join(Member, Member.id == KocMember.member_id)
        .outerjoin(tasks, tasks.c.mid == KocMember.member_id)
        .where(KocMember.status == KOC)
        .order_by(KocMember.promoted_at.desc(), KocMember.id.desc()).limit(limit)))
    return [KocRow(_person(member, name), row.promoted_by, row.promoted_at, n)
            for row, member, n, name in rows]


async def people(session: AsyncSession, member_ids: list[int]) -> dict[int, Person]:
    """The members with these ids, named as the console names them."""
    if not member_ids:
        return {}
    rows = await session.execute(_with_name(select(Member).where(Member.id.in_(member_ids))))
    return {member.id: _person(member, name) for member, name in rows}


@dataclass(frozen=True)
class OwnReferral:
    added_at: datetime
    shown: str  # SHOWN_*
    referee: str | None  # their group nickname, masked; None when WeCom gave none


@dataclass(frozen=True)
class OwnView:
    recommender: Recommender
    credited: int
    referred: int
    referrals: list[OwnReferral]
    rewards: list[RewardBrief]


def shown_status(status: str, revoked: bool) -> str:
    if status == CREDITED and not revoked:
        return SHOWN_CREDITED
    if status in (PENDING, FLAGGED):
        return SHOWN_PENDING
    return SHOWN_NOT_COUNTED


def masked_name(nickname: str | None) -> str | None:
    """The first character of a nickname and two stars: enough for a recommender to know whom
    they brought, too little to find them (and never a phone number)."""
    name = (nickname or "").strip()
    return f"{name[0]}**" if name else None


async def own_view(session: AsyncSession, member_id: int) -> OwnView | None:
    """A recommender's own page: their newest referrals as they may read them, their credited
    count and their rewards; None when the member is no recommender."""
    rec = await session.scalar(select(Recommender).where(Recommender.member_id == member_id))
    if rec is None:
        return None
    rows = (await session.execute(
        select(Referral.added_at, Referral.status, ReferralCredit.revoked_at,
               Member.external_userid)
        .join(Member, Member.id == Referral.referee_member_id)
        .outerjoin(ReferralCredit, ReferralCredit.referral_id == Referral.id)
        .where(Referral.recommender_id == rec.id, Referral.status != NOT_FIRST)
        .order_by(Referral.added_at.desc(), Referral.id.desc()).limit(OWN_MAX))).all()
    names = await nicknames(session, [userid for *_, userid in rows])
    counts = (await _counts(session, [rec.id]))[rec.id]
    return OwnView(rec, counts.credited, counts.referred,
                   [OwnReferral(at, shown_status(status, revoked is not None),
                                masked_name(names.get(userid)))
                    for at, status, revoked, userid in rows],
                   (await _rewards(session, [rec.id]))[rec.id])
