"""The weekly 光荣榜 of each segment: its top recommenders (credited referrals) and top helpers
(answers given in the groups, from the chat archive) over the last `honor_roll.days`, named by
their group nickname. It becomes an item of the honor_roll column for that segment only, made
on honor_roll.weekday; the calendar posts it in that column's slot, within the daily cap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.models import SpeakerDay
from app.calendar import content
from app.calendar.flows import CalendarFlows
from app.calendar.models import ContentItem
from app.engine.config import SHANGHAI
from app.engine.logs import get_logger
from app.groups import service as groups
from app.groups.models import LIVE, CustomerGroup, GroupMember
from app.koc.flows import KocFlows
from app.koc.models import Recommender, ReferralCredit
from app.members.models import Member

log = get_logger("sopbot.koc")


@dataclass(frozen=True)
class Entry:
    member_id: int | None
    external_userid: str
    name: str
    count: int


async def top_recommenders(session: AsyncSession, segment: str, since: datetime,
                           limit: int) -> list[Entry]:
    rows = (await session.execute(
        select(Member.id, Member.external_userid, func.count(ReferralCredit.id).label("n"))
        .join(Recommender, Recommender.id == ReferralCredit.recommender_id)
        .join(Member, Member.id == Recommender.member_id)
        .where(ReferralCredit.segment == segment, ReferralCredit.at >= since,
               ReferralCredit.revoked_at.is_(None))
        .group_by(Member.id, Member.external_userid)
        .order_by(func.count(ReferralCredit.id).desc(), Member.id).limit(limit))).all()
    return [Entry(i, u, await nickname(session, u), n) for i, u, n in rows]


async def top_helpers(session: AsyncSession, segment: str, since: date,
                      limit: int) -> list[Entry]:
    """Members in the segment's groups by answers given there (the archive's rollups)."""
    answers = func.sum(SpeakerDay.answers)
    rows = (await session.execute(
        select(Member.id, Member.external_userid, answers.label("n"))
        .join(CustomerGroup, CustomerGroup.chat_id == SpeakerDay.chat_id)
        .join(Member, Member.external_userid == SpeakerDay.userid)
        .where(CustomerGroup.segment == segment, SpeakerDay.day >= since,
               SpeakerDay.answers > 0)
        .group_by(Member.id, Member.external_userid)
        .order_by(answers.desc(), Member.id).limit(limit))).all()
    return [Entry(i, u, await nickname(session, u), int(n)) for i, u, n in rows]


NO_NICKNAME = "热心群友"  # never an id: people are named in public posts


async def nickname(session: AsyncSession, external_userid: str) -> str:
    """Their group nickname as WeCom last gave it; else a neutral name (never an id)."""
    return (await nicknames(session, [external_userid])).get(external_userid, NO_NICKNAME)


async def nicknames(session: AsyncSession, external_userids: list[str]) -> dict[str, str]:
    """The known group nicknames of these people (the latest group's), in one query; people
    without one are left out."""
    rows = await session.execute(
        select(GroupMember.userid, GroupMember.nickname).where(
            GroupMember.userid.in_(external_userids), GroupMember.nickname.is_not(None))
        .order_by(GroupMember.joined_at))
    return {userid: name for userid, name in rows if name}


def week_label(now: datetime) -> str:
    today = now.astimezone(SHANGHAI).date()
    return f"{today - timedelta(days=today.weekday()):%m-%d}"


def roll_segments(koc: KocFlows, calendar: CalendarFlows) -> list[str]:
    """The segments whose calendar has a slot of the roll's column."""
    assert koc.honor_roll is not None
    column = koc.honor_roll.column
    return [segment for segment, plan in calendar.segments.items()
            if any(slot.column == column for slot in plan.slots)]


async def refresh_nicknames(session: AsyncSession, koc: KocFlows, calendar: CalendarFlows,
                            now: datetime) -> int:
    """The day before the roll, the roll's groups are read again from WeCom: group nicknames
    are in groupchat/get only (a join event carries none). Once per group and day."""
    assert koc.honor_roll is not None
    local = now.astimezone(SHANGHAI)
    if local.isoweekday() % 7 + 1 != koc.honor_roll.weekday:
        return 0
    chats = list(await session.scalars(select(CustomerGroup.chat_id).where(
        CustomerGroup.segment.in_(roll_segments(koc, calendar)),
        CustomerGroup.status == LIVE)))
    for chat_id in chats:
        await groups.request_sync(session, chat_id, f"nicknames:{local:%Y%m%d}")
    return len(chats)


async def make_week(session: AsyncSession, koc: KocFlows, calendar: CalendarFlows,
                    labels: dict[str, str], now: datetime) -> list[str]:
    """On the roll's weekday, one item per segment whose calendar has the roll's column (once
    a week: the title names the week); the segments done now. `labels`: segment → label."""
    assert koc.honor_roll is not None
    roll, local = koc.honor_roll, now.astimezone(SHANGHAI)
    if local.isoweekday() != roll.weekday:
        return []
    made = []
    for segment in roll_segments(koc, calendar):
        label = labels.get(segment, segment)
        title = koc.texts.honor_title.format(segment=label, week=week_label(now))[:128]
        if await session.scalar(select(ContentItem.id).where(
                ContentItem.column_name == roll.column, ContentItem.segment == segment,
                ContentItem.title == title)) is not None:
            continue
        body = await roll_body(session, koc, segment, now)
        await content.add(session, roll.column, title, body, None, now, segment=segment)
        made.append(segment)
    if made:
        log.info("honor_roll_made", segments=made, week=week_label(now))
    return made


async def roll_body(session: AsyncSession, koc: KocFlows, segment: str,
                    now: datetime) -> str:
    assert koc.honor_roll is not None
    roll, texts = koc.honor_roll, koc.texts
    since = now - timedelta(days=roll.days)
    lines = [texts.honor_recommender.format(place=n, name=e.name, count=e.count)
             for n, e in enumerate(await top_recommenders(session, segment, since, roll.top), 1)]
    lines += [texts.honor_helper.format(place=n, name=e.name, count=e.count)
              for n, e in enumerate(await top_helpers(
                  session, segment, since.astimezone(SHANGHAI).date(), roll.top), 1)]
    return "\n".join(lines) or texts.honor_empty
