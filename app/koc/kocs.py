"""KOC candidates, promotion and demotion (corp tag `KOC` through the outbox), and what a KOC
is given to do: a 话题讨论 topic to lead (an item of koc.yaml's topic column, naming them) or an
invitation to speak at a 《嘉宾分享会》 (their staff member is asked to invite them).

A candidate's score over `candidates.days`: credited referrals, answers given in the groups
(chat archive) and contribution points of the group rules, each with its weight; only members
at `min_score` or more are listed, with the reasons that make the score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.models import MemberStrike, SpeakerDay
from app.calendar import content
from app.engine.config import SHANGHAI
from app.engine.logs import get_logger
from app.engine.outbox import store as outbox
from app.engine.wecom.api import MarkTag, SendMessage, Text
from app.koc.flows import KocFlows
from app.koc.honor import nickname
from app.koc.models import FORMER, KOC, KocAssignment, KocMember, Recommender, ReferralCredit
from app.members.models import Member
from app.routing.tags import koc_tag_id

log = get_logger("sopbot.koc")
TAG_KIND, NOTICE_KIND = "koc_tag", "koc_notice"
TOPIC, GUEST = "topic", "guest"
CANDIDATES_MAX = 200


@dataclass
class Candidate:
    member_id: int
    external_userid: str
    score: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # referrals, answers, contributions
    koc: bool = False


async def candidates(session: AsyncSession, koc: KocFlows, now: datetime,
                     limit: int = CANDIDATES_MAX) -> list[Candidate]:
    """Members by score, highest first, at min_score or more."""
    weights, since = koc.candidates, now - timedelta(days=koc.candidates.days)
    found: dict[int, Candidate] = {}
    for reason, weight, rows in (
            ("referrals", weights.per_referral, await _referrals(session, since)),
            ("answers", weights.per_answer, await _answers(session, since)),
            ("contributions", weights.per_contribution, await _contributions(session, since))):
        for member_id, userid, count in rows:
            entry = found.setdefault(member_id, Candidate(member_id, userid))
            entry.reasons[reason] = int(count)
            entry.score += weight * int(count)
    ranked = sorted((c for c in found.values() if c.score >= weights.min_score),
                    key=lambda c: (-c.score, c.member_id))[:limit]
    kocs = set(await session.scalars(select(KocMember.member_id).where(
        KocMember.status == KOC, KocMember.member_id.in_([c.member_id for c in ranked]))))
    for entry in ranked:
        entry.koc = entry.member_id in kocs
    return ranked


async def _referrals(session: AsyncSession, since: datetime) -> list[tuple[int, str, int]]:
    rows = await session.execute(
        select(Member.id, Member.external_userid, func.count(ReferralCredit.id))
        .join(Recommender, Recommender.id == ReferralCredit.recommender_id)
        .join(Member, Member.id == Recommender.member_id)
        .where(ReferralCredit.at >= since, ReferralCredit.revoked_at.is_(None))
        .group_by(Member.id, Member.external_userid))
    return [(i, u, n) for i, u, n in rows]


async def _answers(session: AsyncSession, since: datetime) -> list[tuple[int, str, int]]:
    rows = await session.execute(
        select(Member.id, Member.external_userid, func.sum(SpeakerDay.answers))
        .join(Member, Member.external_userid == SpeakerDay.userid)
        .where(SpeakerDay.day >= since.astimezone(SHANGHAI).date(), SpeakerDay.answers > 0)
        .group_by(Member.id, Member.external_userid))
    return [(i, u, n) for i, u, n in rows]


async def _contributions(session: AsyncSession,
                         since: datetime) -> list[tuple[int, str, int]]:
    rows = await session.execute(
        select(Member.id, Member.external_userid, func.sum(MemberStrike.points))
        .join(Member, Member.external_userid == MemberStrike.userid)
        .where(MemberStrike.kind == "contribution", MemberStrike.status == "active",
               MemberStrike.at >= since)
        .group_by(Member.id, Member.external_userid))
    return [(i, u, n) for i, u, n in rows]


class NotKoc(ValueError):
    """Topics and guest invitations go to KOCs only: promote the member first."""


class NoKocTag(RuntimeError):
    """The `KOC` corp tag is not made yet: run `sopbot tags sync`."""


async def set_koc(session: AsyncSession, member: Member, promote: bool, operator: str,
                  now: datetime) -> bool:
    """Promote (or demote) the member and queue the tag change; False when nothing changed."""
    tag = await koc_tag_id(session)
    if tag is None:
        raise NoKocTag("the KOC tag is not in WeCom yet: run `sopbot tags sync`")
    row = await session.scalar(select(KocMember).where(KocMember.member_id == member.id)
                               .with_for_update())
    if promote == (row is not None and row.status == KOC):
        return False
    if row is None:
        row = KocMember(member_id=member.id, promoted_by=operator[:80], promoted_at=now)
        session.add(row)
    elif promote:
        row.promoted_by, row.promoted_at, row.demoted_by, row.demoted_at = (
            operator[:80], now, None, None)
    else:
        row.demoted_by, row.demoted_at = operator[:80], now
    row.status = KOC if promote else FORMER
    change = {"add_tag": [tag]} if promote else {"remove_tag": [tag]}
    await outbox.enqueue(session, f"koctag:{member.id}:{int(now.timestamp())}", MarkTag(
        userid=member.staff_userid, external_userid=member.external_userid, **change),
        kind=TAG_KIND)
    log.info("koc_promoted" if promote else "koc_demoted", member_id=member.id,
             operator=operator)
    return True


async def is_koc(session: AsyncSession, member_id: int) -> bool:
    return await session.scalar(select(KocMember.id).where(
        KocMember.member_id == member_id, KocMember.status == KOC)) is not None


async def assign(session: AsyncSession, member: Member, kind: str, title: str, operator: str,
                 now: datetime, koc: KocFlows, agent_id: int | None) -> KocAssignment:
    """Give a KOC a topic to lead (queued in the topic column for their segment) or a guest
    invitation; their staff member is asked to pass it on (an app message). NotKoc for a
    member who is not a KOC (now)."""
    if not await is_koc(session, member.id):
        raise NotKoc(f"member #{member.id} is not a KOC")
    name = await nickname(session, member.external_userid)
    item_id = None
    if kind == TOPIC:
        item = await content.add(session, koc.topic_column, title[:128],
                                 koc.texts.topic_body.format(name=name), None, now,
                                 segment=member.segment)
        item_id = item.id
    row = KocAssignment(member_id=member.id, kind=kind, title=title[:128],
                        content_item_id=item_id, by=operator[:80], at=now)
    session.add(row)
    await session.flush()
    text = (koc.texts.topic_to_staff if kind == TOPIC else koc.texts.guest_to_staff).format(
        name=name, title=title)
    if agent_id is not None:
        await outbox.enqueue(session, f"kocassign:{row.id}", SendMessage(
            agentid=agent_id, touser=member.staff_userid, msgtype="text",
            text=Text(content=text)), kind=NOTICE_KIND)
    log.info("koc_assigned", member_id=member.id, kind=kind, operator=operator)
    return row
