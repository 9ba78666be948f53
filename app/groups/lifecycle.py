"""Each group's stage and health (PLAYBOOK.md "stages"), from the signals there are: joins and
quits (group_member), the calendar posts its owner confirmed (calendar_post) and, where the chat
archive covers the group, its customers' talk (app/archive/reports.py: customers who spoke in
the window as a share of its members, their messages).

Each group says which signals judged it (`source`): `archive` when the archive is in use here
and has counted messages of the group, else `fallback`: joins, quits and confirmed posts only,
its activity unknown (None), never guessed. 微信客服 traffic says nothing about a group and is
not read. WeCom's per-owner figures (groupchat/statistic) are an owner's, not a group's: the
pages show them beside a fallback group, never in its score.

Stages are counted from the day a group reaches its ideal size (`filled_at`; for a group full
when sopbot first read it, its creation in WeCom). Before that it is `filling`, still taking
its first members, and never weak. Then `strong` for `strong_days`, then `daily`. A daily group
is `weak`, a zombie that gets a migration plan, only on a full window of daily-stage signals:
`window_days` after its strong month, health below the threshold and no join for a while; on
archive signals, only once the archive's figures reach back over the whole window (a reader
new here holds only WeCom's last few days, and silence it has not seen is no evidence)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive import reports
from app.archive.status import STALE_AFTER_H, archive_status
from app.calendar.models import CalendarPost, GroupDay
from app.groups import pools
from app.groups.lifecycle_flows import LifecycleFlows
from app.groups.models import LIVE, CustomerGroup, GroupMember
from app.groups.service import CUSTOMER

FILLING, STRONG, DAILY, WEAK = "filling", "strong", "daily", "weak"
STAGES = (FILLING, STRONG, DAILY, WEAK)  # in the order of a group's life
ARCHIVE, FALLBACK = "archive", "fallback"  # which signals judged a group
# Health points: joins and confirmed posts always; the archive's talk where it covers the
# group. A fallback group's points are scaled to 0-100 over the signals it has.
JOINS_MAX, POSTS_MAX, SPEAKERS_MAX, MESSAGES_MAX, QUITS_MAX = 25, 35, 30, 10, 30
FALLBACK_MAX = JOINS_MAX + POSTS_MAX


@dataclass(frozen=True)
class Health:
    chat_id: str
    name: str
    segment: str | None
    owner: str
    members: int
    filled_at: datetime | None
    stage: str
    score: int
    joins: int
    quits: int
    confirmed: int  # days with a confirmed calendar post
    source: str  # ARCHIVE or FALLBACK
    # The window's talk from the archive; None in fallback (unknown, not zero).
    speakers: int | None = None  # customers who spoke
    messages: int | None = None  # their messages


@dataclass(frozen=True)
class _Archive:
    """What the archive says of the live groups: the talk of those it has seen."""

    talk: dict[str, reports.WindowTalk]
    seen: dict[str, date]  # the groups it has counted, with their first day of figures
    since: date  # the window's first day
    current: bool  # the reader has read to the end lately: silence in it is silence

    def covers(self, chat_id: str) -> bool:
        """Its figures of the group reach back over the whole window and are current: only
        then can they make a group weak (a group whose owner got an archive seat last week,
        or an archive whose reader stopped, is not silent for it)."""
        first = self.seen.get(chat_id)
        return self.current and first is not None and first <= self.since


async def assess(session: AsyncSession, flows: LifecycleFlows, now: datetime,
                 chat_ids: Sequence[str] | None = None) -> list[Health]:
    """Every live group's stage and health score (0-100); only those of `chat_ids` if given
    (the statements then read those groups' rows only)."""
    since = now - timedelta(days=flows.window_days)
    picked = list(chat_ids) if chat_ids is not None else None
    if picked == []:
        return []
    members = await _members(session, since, now - timedelta(days=flows.quiet_days), picked)
    confirmed = dict((await session.execute(
        select(GroupDay.chat_id, func.count()).join(
            CalendarPost, CalendarPost.key == GroupDay.post_key)
        .where(CalendarPost.task_status == "confirmed", CalendarPost.at >= since,
               *_among(GroupDay.chat_id, picked))
        .group_by(GroupDay.chat_id))).all())
    pooled = await pools.pooled_chat_ids(session)
    groups = list(await session.scalars(select(CustomerGroup).where(
        CustomerGroup.status == LIVE, *_among(CustomerGroup.chat_id, picked))
        .order_by(CustomerGroup.id)))
    archive = await _archive(session, [g.chat_id for g in groups],
                             reports.first_day(now, flows.window_days), now)
    found = []
    for group in groups:
        chat_id = group.chat_id
        joins, quits, recent = members.get(chat_id, (0, 0, 0))
        signals = (joins, quits, confirmed.get(chat_id, 0))
        talk = (archive.talk.get(chat_id, reports.WindowTalk(0, 0))
                if chat_id in archive.seen else None)
        score = _score(group.member_count, *signals, talk, flows.window_days)
        # New members still come in: seated by the segment's code, or joined lately.
        lively = chat_id in pooled or bool(joins or recent)
        judged = talk is None or archive.covers(chat_id)
        found.append(Health(
            chat_id, group.name, group.segment, group.owner, group.member_count,
            group.filled_at, _stage(group, score, lively, judged, now, flows), score, *signals,
            source=FALLBACK if talk is None else ARCHIVE,
            speakers=None if talk is None else talk.speakers,
            messages=None if talk is None else talk.customer_messages))
    return found


def _among(column: Any, chat_ids: list[str] | None) -> list[ColumnElement[bool]]:
    return [] if chat_ids is None else [column.in_(chat_ids)]


async def _members(session: AsyncSession, since: datetime, quiet_since: datetime,
                   chat_ids: list[str] | None) -> dict[str, tuple[int, int, int]]:
    """Per group, its customers who joined in the window, left in it, and joined in the quiet
    days: one statement (the joins by their index, the quits by the rows they leave)."""
    joined, left = GroupMember.joined_at, GroupMember.left_at
    first = min(since, quiet_since)
    rows = await session.execute(select(
        GroupMember.chat_id, func.count(case((joined >= since, 1))),
        func.count(case((left >= since, 1))), func.count(case((joined >= quiet_since, 1))))
        .where(GroupMember.type == CUSTOMER, or_(joined >= first, left >= since),
               *_among(GroupMember.chat_id, chat_ids))
        .group_by(GroupMember.chat_id))
    return {chat_id: (j, q, r) for chat_id, j, q, r in rows}


async def _archive(session: AsyncSession, chat_ids: list[str], since: date,
                   now: datetime) -> _Archive:
    status = await archive_status(session, now) if chat_ids else None
    if status is None:
        return _Archive({}, {}, since, False)
    return _Archive(await reports.window_talk(session, chat_ids, since),
                    await reports.seen(session, chat_ids), since,
                    not status.lagging(STALE_AFTER_H))


def _score(members: int, joins: int, quits: int, confirmed: int,
           talk: reports.WindowTalk | None, window_days: int) -> int:
    """0 for a silent group: joins up to +25, calendar posts its owner confirmed up to +35
    (every day of the window); from the archive, customers who spoke up to +30 (a fifth of the
    group is full marks) and their messages up to +10 (one a day); quits down to -30. Without
    the archive the joins and posts are scaled to the whole 0-100."""
    earned = min(joins * 5, JOINS_MAX) + POSTS_MAX * min(confirmed / window_days, 1.0)
    if talk is None:
        earned *= 100 / FALLBACK_MAX
    else:
        share = talk.speakers / members if members else 0.0
        earned += (min(share * 5 * SPEAKERS_MAX, SPEAKERS_MAX)
                   + MESSAGES_MAX * min(talk.customer_messages / window_days, 1.0))
    return max(0, min(100, round(earned) - min(quits * 5, QUITS_MAX)))


def _stage(group: CustomerGroup, score: int, lively: bool, judged: bool, now: datetime,
           flows: LifecycleFlows) -> str:
    filled = _filled_since(group)
    if filled is None:
        return FILLING
    past_strong = now - filled - timedelta(days=flows.strong_days)
    if past_strong < timedelta(0):
        return STRONG
    # The window's signals judge the daily stage only once they all fall in it: a group fresh
    # out of its strong month is not a zombie because the window reaches back into it, nor
    # one whose window the archive has not seen whole.
    full_window = judged and past_strong >= timedelta(days=flows.window_days)
    # A zombie is planned for migration and its owner asked to dissolve it: never one new
    # members still come into.
    if full_window and score < flows.zombie_health and not lively:
        return WEAK
    return DAILY


def _filled_since(group: CustomerGroup) -> datetime | None:
    """When its stages began; None while it is filling. A group already full when sopbot first
    read it filled at some unknown time after WeCom made it: its creation is the latest sure
    bound, so an old group is not "strong" anew."""
    return group.created_at if group.filled_on_arrival else group.filled_at
