"""Every live customer group as the console's groups page, `sopbot groups` and `GET /api/groups`
show it: its stage and health (app/groups/lifecycle.py) and its last 7 days of activity with
the source they come from. One function, `overview`, read by all three.

`activity.source` is the group's: `archive` when the chat archive is in use here and has
counted messages of the group (the figures are its rollups), `fallback` otherwise (the figures
are None: unknown, never guessed; health then rests on joins, quits and confirmed posts, and
WeCom's per-owner figures are given beside it as the owner's).

Cost: a page in chat_id order (the API's) reads its own groups' rows only; a stage filter or the
console's order needs every live group's stage first (a handful of grouped statements over all
the groups, whose number is in the hundreds, not the members'); the 7 days' activity is read for
the page's groups only (one grouped statement per rollup table); nothing reads the archived
messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive import reports
from app.archive.reports import OwnerFigures
from app.groups.lifecycle import ARCHIVE, DAILY, FILLING, STRONG, WEAK, Health, assess
from app.groups.models import LIVE, CustomerGroup
from app.groups.sources import GroupSources

PAGE_MAX = 500
# The console's order: the zombies, which need a decision, first; then a group's life.
TRIAGE = (WEAK, FILLING, STRONG, DAILY)
BY_CHAT, BY_TRIAGE = "chat_id", "triage"


@dataclass(frozen=True)
class Activity:
    """A group's last 7 days (today included); the counts are None in fallback."""

    source: str
    messages_7d: int | None = None  # everyone's
    speakers_7d: int | None = None  # distinct customers who spoke
    staff_messages_7d: int | None = None


@dataclass(frozen=True)
class GroupOverview:
    health: Health
    activity: Activity

    @property
    def chat_id(self) -> str:
        return self.health.chat_id


@dataclass(frozen=True)
class Overview:
    groups: list[GroupOverview]
    total: int  # live groups matching the filters
    # Per stage, of the live groups of the segment asked; None when only the page's groups
    # were assessed (BY_CHAT without a stage).
    counts: dict[str, int] | None
    next_cursor: str | None  # BY_CHAT: the cursor of the next page; None after the last
    # The latest groupchat/statistic day of each owner of a fallback group on this page.
    owners: dict[str, OwnerFigures] = field(default_factory=dict)


async def overview(session: AsyncSession, flows: GroupSources, now: datetime, *,
                   segment: str | None = None, stage: str | None = None,
                   order: str = BY_CHAT, cursor: str | None = None, offset: int = 0,
                   limit: int = 100) -> Overview:
    """One page of live groups. `segment` "" picks the groups of no segment; BY_CHAT pages by
    `cursor` (the last chat_id seen), BY_TRIAGE (zombies first, then routing.yaml's segment
    order, then name) by `offset`. BY_CHAT without a stage assesses the page's groups only
    (its `counts` are then None); otherwise every live group is."""
    limit = max(0, min(limit, PAGE_MAX))
    if order == BY_CHAT and stage is None:
        ids = await _live_ids(session, segment, cursor, limit + 1)
        page = sorted(await assess(session, flows.lifecycle, now, ids[:limit]),
                      key=lambda h: h.chat_id)
        return await _page(session, page, now, await _live_count(session, segment), None,
                           page[-1].chat_id if len(ids) > limit and page else None)
    everyone = [h for h in await assess(session, flows.lifecycle, now)
                if segment is None or (h.segment or "") == segment]
    counts = {s: sum(h.stage == s for h in everyone) for s in TRIAGE}
    chosen = [h for h in everyone if stage is None or h.stage == stage]
    if order == BY_TRIAGE:
        segments = list(flows.routing.segments)
        chosen.sort(key=lambda h: (TRIAGE.index(h.stage), _index(segments, h.segment),
                                   h.name or h.chat_id, h.chat_id))
        return await _page(session, chosen[offset:offset + limit], now, len(chosen), counts,
                           None)
    chosen.sort(key=lambda h: h.chat_id)
    after = [h for h in chosen if cursor is None or h.chat_id > cursor]
    return await _page(session, after[:limit], now, len(chosen), counts,
                       after[limit - 1].chat_id if len(after) > limit and limit else None)


async def _page(session: AsyncSession, page: list[Health], now: datetime, total: int,
                counts: dict[str, int] | None, next_cursor: str | None) -> Overview:
    fallback_owners = {h.owner for h in page if h.source != ARCHIVE and h.owner}
    return Overview(await _with_activity(session, page, now), total, counts, next_cursor,
                    await reports.owner_figures(session, fallback_owners))


def _live(segment: str | None) -> list[ColumnElement[bool]]:
    where = [CustomerGroup.status == LIVE]
    if segment == "":
        where.append(CustomerGroup.segment.is_(None))
    elif segment is not None:
        where.append(CustomerGroup.segment == segment)
    return where


async def _live_ids(session: AsyncSession, segment: str | None, cursor: str | None,
                    limit: int) -> list[str]:
    after = [] if cursor is None else [CustomerGroup.chat_id > cursor]
    return list(await session.scalars(select(CustomerGroup.chat_id).where(
        *_live(segment), *after).order_by(CustomerGroup.chat_id).limit(limit)))


async def _live_count(session: AsyncSession, segment: str | None) -> int:
    return await session.scalar(select(func.count()).select_from(CustomerGroup).where(
        *_live(segment))) or 0


async def _with_activity(session: AsyncSession, page: list[Health],
                         now: datetime) -> list[GroupOverview]:
    archived = [h.chat_id for h in page if h.source == ARCHIVE]
    figures = (await reports.group_activity(session, archived, now, month=False)
               if archived else {})
    rows = []
    for health in page:
        if health.source != ARCHIVE:
            rows.append(GroupOverview(health, Activity(health.source)))
            continue
        seen = figures.get(health.chat_id, reports.GroupActivity(health.chat_id))
        rows.append(GroupOverview(health, Activity(ARCHIVE, seen.messages_7d, seen.speakers_7d,
                                                   seen.staff_messages_7d)))
    return rows


def _index(segments: list[str], segment: str | None) -> int:
    return segments.index(segment) if segment in segments else len(segments)


def lines(groups: list[GroupOverview]) -> list[str]:
    """`sopbot groups --stage …`: a line per group, its activity columns last but the id."""
    return [_line(g) for g in groups]


def _line(row: GroupOverview) -> str:
    h, a = row.health, row.activity
    if a.source == ARCHIVE:
        talk = f"7d {a.messages_7d} msgs {a.speakers_7d} speakers {a.staff_messages_7d} staff"
    else:
        talk = "7d activity unknown (no archive: joins, quits, posts)"
    return (f"{h.stage:<7} {h.score:>3} {h.name or h.chat_id:<22} {h.segment or '-':<14} "
            f"{h.members:>4} members  +{h.joins} -{h.quits} joins/quits, "
            f"{h.confirmed} posts confirmed  {talk} [{a.source}]  {h.chat_id}")


def owner_lines(owners: dict[str, OwnerFigures]) -> list[str]:
    """WeCom's figures for the owners of the fallback groups: all of an owner's groups
    together, never one group's."""
    return [f"owner {f.owner} on {f.day} (WeCom groupchat/statistic, all their groups): "
            f"{f.chat_has_msg}/{f.chat_total} groups with messages, {f.msg_total} msgs, "
            f"{f.member_has_msg}/{f.member_total} members spoke, +{f.new_member_cnt} joined"
            for _, f in sorted(owners.items())]
