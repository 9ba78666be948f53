"""The read side of the activity rollups (app/archive/activity.py writes them): per group, its
messages, speaking customers and staff messages over 7 and 30 days and day by day; per member,
when they last spoke, their messages over 7 and 30 days and the answers they gave, per group;
the lifecycle's window figures; WeCom's per-owner statistics (owner_group_stat).

Everything here reads group_activity_day, speaker_day, speaker and owner_group_stat with grouped
queries bounded by the groups asked (one statement per table for a page of groups, on the
tables' (chat_id, day …) and (userid, day) indexes), never archive_message: a page costs the
same at 100k members and millions of messages.

A window of N days is N Asia/Shanghai days ending today (today counts, as it is so far)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.activity import local_day
from app.archive.models import GroupActivityDay, OwnerGroupStat, Speaker, SpeakerDay
from app.engine.wecom.archive_events import CUSTOMER_PREFIXES
from app.groups.models import CustomerGroup

WEEK, MONTH = 7, 30
CHUNK = 500  # chat ids per statement: well inside every driver's bound on parameters


def first_day(now: datetime, days: int) -> date:
    """The first local day of the `days`-day window that ends today."""
    return local_day(now) - timedelta(days=days - 1)


def is_customer(userid: Any) -> ColumnElement[bool]:
    """SQL for `sender_kind(userid) == CUSTOMER` (speaker_day keeps no kind)."""
    return func.substr(userid, 1, 2).in_(CUSTOMER_PREFIXES)


# --- per group -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupActivity:
    """A group's figures from the archive: messages are everyone's (robots' too), speakers the
    distinct customers who spoke, staff messages the staff's."""

    chat_id: str
    messages_7d: int = 0
    speakers_7d: int = 0
    staff_messages_7d: int = 0
    messages_30d: int = 0
    speakers_30d: int = 0
    staff_messages_30d: int = 0


async def seen(session: AsyncSession, chat_ids: Sequence[str]) -> dict[str, date]:
    """The groups the archive has ever counted a message of (the others it may not cover:
    an owner without an archive seat, customers who did not agree), each with its first day
    of figures: one index probe each (uq_group_activity_day's (chat_id, day) order)."""
    found: dict[str, date] = {}
    for chunk in _chunks(chat_ids):
        first = (select(func.min(GroupActivityDay.day)).where(
            GroupActivityDay.chat_id == CustomerGroup.chat_id).scalar_subquery())
        rows = await session.execute(select(CustomerGroup.chat_id, first).where(
            CustomerGroup.chat_id.in_(chunk), first.is_not(None)))
        found.update({chat_id: day for chat_id, day in rows})
    return found


async def group_activity(session: AsyncSession, chat_ids: Sequence[str], now: datetime,
                         month: bool = True) -> dict[str, GroupActivity]:
    """7- and 30-day figures of the groups asked (absent: none in 30 days): two statements
    per chunk of groups. Without `month` only the 7 days are read (the 30-day figures are
    then the same as the 7)."""
    week = first_day(now, WEEK)
    start = first_day(now, MONTH) if month else week
    counts: dict[str, list[int]] = {}
    for chunk in _chunks(chat_ids):
        days = await session.execute(
            select(GroupActivityDay.chat_id,
                   _sum_since(GroupActivityDay.messages, GroupActivityDay.day, week),
                   _sum_since(GroupActivityDay.staff_messages, GroupActivityDay.day, week),
                   func.sum(GroupActivityDay.messages),
                   func.sum(GroupActivityDay.staff_messages))
            .where(GroupActivityDay.chat_id.in_(chunk), GroupActivityDay.day >= start)
            .group_by(GroupActivityDay.chat_id))
        for chat_id, m7, s7, m30, s30 in days:
            counts[chat_id] = [int(m7 or 0), int(s7 or 0), int(m30 or 0), int(s30 or 0), 0, 0]
        speakers = await session.execute(
            select(SpeakerDay.chat_id,
                   func.count(distinct(case((SpeakerDay.day >= week, SpeakerDay.userid)))),
                   func.count(distinct(SpeakerDay.userid)))
            .where(SpeakerDay.chat_id.in_(chunk), SpeakerDay.day >= start,
                   SpeakerDay.messages > 0, is_customer(SpeakerDay.userid))
            .group_by(SpeakerDay.chat_id))
        for chat_id, w, m in speakers:
            counts.setdefault(chat_id, [0, 0, 0, 0, 0, 0])[4:] = [int(w), int(m)]
    return {chat_id: GroupActivity(chat_id, messages_7d=m7, staff_messages_7d=s7,
                                   messages_30d=m30, staff_messages_30d=s30, speakers_7d=w,
                                   speakers_30d=m)
            for chat_id, (m7, s7, m30, s30, w, m) in counts.items()}


@dataclass(frozen=True)
class WindowTalk:
    """What the lifecycle weighs of a group's talk over its window."""

    speakers: int  # distinct customers who spoke
    customer_messages: int


async def window_talk(session: AsyncSession, chat_ids: Sequence[str],
                      since: date) -> dict[str, WindowTalk]:
    """Per group (absent: nobody spoke), its customers' talk from `since` on."""
    messages: dict[str, int] = {}
    speakers: dict[str, int] = {}
    for chunk in _chunks(chat_ids):
        messages.update((c, int(n or 0)) for c, n in await session.execute(
            select(GroupActivityDay.chat_id, func.sum(GroupActivityDay.customer_messages))
            .where(GroupActivityDay.chat_id.in_(chunk), GroupActivityDay.day >= since)
            .group_by(GroupActivityDay.chat_id)))
        speakers.update((c, int(n)) for c, n in await session.execute(
            select(SpeakerDay.chat_id, func.count(distinct(SpeakerDay.userid)))
            .where(SpeakerDay.chat_id.in_(chunk), SpeakerDay.day >= since,
                   SpeakerDay.messages > 0, is_customer(SpeakerDay.userid))
            .group_by(SpeakerDay.chat_id)))
    return {c: WindowTalk(speakers.get(c, 0), messages.get(c, 0))
            for c in set(messages) | set(speakers)
            if speakers.get(c, 0) or messages.get(c, 0)}


def spoke_since(chat_id: Any, userid: Any, since: date) -> ColumnElement[bool]:
    """SQL: the person `userid` spoke in the group `chat_id` on `since` or later (a recalled
    message taken back does not count)."""
    return select(SpeakerDay.id).where(
        SpeakerDay.chat_id == chat_id, SpeakerDay.userid == userid, SpeakerDay.day >= since,
        SpeakerDay.messages > 0).exists()


@dataclass(frozen=True)
class Day:
    day: date
    messages: int = 0
    customer_messages: int = 0
    staff_messages: int = 0
    speakers: int = 0


async def group_days(session: AsyncSession, chat_id: str, now: datetime,
                     days: int = MONTH) -> list[Day]:
    """One group's last `days` days, oldest first, a quiet day as zeros."""
    start = first_day(now, days)
    rows = {r.day: Day(r.day, r.messages, r.customer_messages, r.staff_messages, r.speakers)
            for r in await session.scalars(select(GroupActivityDay).where(
                GroupActivityDay.chat_id == chat_id, GroupActivityDay.day >= start))}
    return [rows.get(start + timedelta(days=n), Day(start + timedelta(days=n)))
            for n in range(days)]


# --- per member ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberActivity:
    """One person in one group: when they last spoke, messages over 7 and 30 days and in all,
    answers given (another customer's question answered in time: app/archive/questions.py)."""

    chat_id: str
    last_spoke: datetime
    messages: int
    messages_7d: int
    messages_30d: int
    answers: int
    answers_30d: int


async def member_activity(session: AsyncSession, userid: str,
                          now: datetime) -> list[MemberActivity]:
    """Every group the person spoke in, the latest first: two statements on the userid
    indexes."""
    week, month = first_day(now, WEEK), first_day(now, MONTH)
    recent = {chat_id: (int(m7 or 0), int(m30 or 0), int(a30 or 0))
              for chat_id, m7, m30, a30 in await session.execute(
        select(SpeakerDay.chat_id, _sum_since(SpeakerDay.messages, SpeakerDay.day, week),
               func.sum(SpeakerDay.messages), func.sum(SpeakerDay.answers))
        .where(SpeakerDay.userid == userid, SpeakerDay.day >= month)
        .group_by(SpeakerDay.chat_id))}
    people = await session.scalars(select(Speaker).where(Speaker.userid == userid)
                                   .order_by(Speaker.last_at.desc(), Speaker.chat_id))
    found = []
    for person in people:
        m7, m30, a30 = recent.get(person.chat_id, (0, 0, 0))
        found.append(MemberActivity(person.chat_id, person.last_at, person.messages, m7, m30,
                                    person.answers, a30))
    return found


# --- per owner: WeCom's groupchat/statistic --------------------------------------------------


@dataclass(frozen=True)
class OwnerFigures:
    """One owner's groups together on one day, as WeCom counts them: never one group's."""

    owner: str
    day: date
    chat_total: int
    chat_has_msg: int
    member_total: int
    member_has_msg: int
    msg_total: int
    new_member_cnt: int


async def owner_figures(session: AsyncSession, owners: Iterable[str]) -> dict[str, OwnerFigures]:
    """Each owner's latest stored day (absent: none stored)."""
    found: dict[str, OwnerFigures] = {}
    for chunk in _chunks(sorted(set(owners))):
        latest = (select(OwnerGroupStat.owner, func.max(OwnerGroupStat.day).label("day"))
                  .where(OwnerGroupStat.owner.in_(chunk)).group_by(OwnerGroupStat.owner)
                  .subquery())
        for row in await session.scalars(select(OwnerGroupStat).join(latest, and_(
                OwnerGroupStat.owner == latest.c.owner, OwnerGroupStat.day == latest.c.day))):
            found[row.owner] = OwnerFigures(row.owner, row.day, row.chat_total,
                                            row.chat_has_msg, row.member_total,
                                            row.member_has_msg, row.msg_total,
                                            row.new_member_cnt)
    return found


def _sum_since(value: Any, day: Any, since: date) -> Any:
    return func.sum(case((day >= since, value), else_=0))


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    items = list(items)
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]
