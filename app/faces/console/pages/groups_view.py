"""What the groups page shows: every customer group with its segment, size against the
segment's ideal, stage and health, its last 7 days of activity with their source (the same
app/groups/overview.py as `sopbot groups --stage` and GET /api/groups), its onboarding runs,
whether new members are seated in it now, and a zombie's migration plan; beside the groups the
chat archive does not cover, their owners' WeCom figures (per owner, never per group). Read from
the database only: nothing here calls WeCom. A page of PAGE_SIZE groups reads the rollups of its
own groups only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.activity import archive_in_use
from app.archive.reports import OwnerFigures
from app.calendar import onboarding
from app.calendar.models import SopRun
from app.faces.console.labels import NO_SEGMENT
from app.faces.console.times import NONE, local, local_day
from app.flows import Flows
from app.groups import pools
from app.groups.lifecycle import ARCHIVE, DAILY, FILLING, STRONG, WEAK
from app.groups.models import DISMISSED, CustomerGroup, GroupMigration
from app.groups.overview import BY_TRIAGE, GroupOverview, overview

# In the order the page lists them: the zombies, which need a decision, first; then a group's
# life: filling (stages count from the day it reaches its ideal size), strong, daily.
STAGE_LABELS = {WEAK: "弱运营 · 僵尸群", FILLING: "招募期（未满员）", STRONG: "强运营（前期）",
                DAILY: "日常运营（中期）", DISMISSED: "已解散"}
NO_SEGMENT_LABEL = "未分群"  # a group whose name matches no segment
SOURCE_LABELS = {ARCHIVE: "会话存档", "fallback": "无会话存档：入群退群与发帖"}
PAGE_SIZE = 100


@dataclass(frozen=True)
class GroupRow:
    chat_id: str
    name: str
    segment: str  # "" when the group matches no segment
    segment_label: str
    owner: str
    members: int
    ideal: int | None
    stage: str
    score: int | None  # None for a dismissed group (not assessed)
    signals: list[str]  # the window's joins, quits, confirmed posts (and talk, from the archive)
    in_pool: bool  # behind the segment's 加入群聊 code: new members are seated here
    filled: str  # the day it reached its ideal size
    overflowing: bool  # filled, yet still behind the code: its segment's pool is empty
    source: str = ""  # ARCHIVE or "fallback"; "" for a dismissed group
    # The last 7 days, from the archive; in fallback, where the owner's WeCom figures are.
    activity: list[str] = field(default_factory=list)
    onboarding: list[str] = field(default_factory=list)
    migration: str = ""

    @property
    def stage_label(self) -> str:
        return STAGE_LABELS[self.stage]

    @property
    def source_label(self) -> str:
        return SOURCE_LABELS.get(self.source, "")

    @property
    def zombie(self) -> bool:
        return self.stage == WEAK

    @property
    def size(self) -> str:
        return f"{self.members}/{self.ideal}" if self.ideal else f"{self.members}/{NONE}"


@dataclass(frozen=True)
class Listing:
    rows: list[GroupRow]
    counts: list[tuple[str, str, int]]  # (stage, label, how many) for the tally
    total: int  # every group known, of every segment and stage
    matching: int  # the groups of the filters, on every page
    page: int
    pages: int
    owners: list[OwnerFigures]  # the owners of this page's fallback groups
    archive: bool  # the chat archive is in use here


@dataclass(frozen=True)
class Context:
    """What the rows are built from, read in one session."""

    flows: Flows
    today: date
    groups: dict[str, CustomerGroup]
    runs: dict[str, list[SopRun]]
    migrations: dict[str, GroupMigration]
    pooled: set[str]
    owner_figures: set[str] = field(default_factory=set)  # owners with WeCom figures stored


async def load(session: AsyncSession, flows: Flows, now: datetime, segment: str = "",
               stage: str = "", page: int = 1) -> Listing:
    """One page of groups: live ones zombies first, then in routing.yaml's segment order,
    then by name (app/groups/overview.py); the dismissed ones last."""
    wanted = None if not segment else ("" if segment == NO_SEGMENT else segment)
    offset = (page - 1) * PAGE_SIZE
    # Under 已解散 the live groups give their counts only.
    live = await overview(session, flows, now, segment=wanted, stage=None if stage in (
        "", DISMISSED) else stage, order=BY_TRIAGE, offset=offset,
        limit=0 if stage == DISMISSED else PAGE_SIZE)
    dismissed_count = await _dismissed_count(session, wanted)
    live_rows = [] if stage == DISMISSED else live.groups
    live_total = 0 if stage == DISMISSED else live.total
    dismissed: list[CustomerGroup] = []
    if not stage or stage == DISMISSED:
        room = PAGE_SIZE - len(live_rows)
        dismissed = await _dismissed(session, wanted, max(0, offset - live_total), room)
    chat_ids = [r.chat_id for r in live_rows] + [g.chat_id for g in dismissed]
    context = Context(flows, local_day(now), await _groups(session, chat_ids),
                      await _runs(session, chat_ids), await _migrations(session, chat_ids),
                      await pools.pooled_chat_ids(session), set(live.owners))
    rows = [_row(context, context.groups[r.chat_id], r) for r in live_rows]
    rows += [_row(context, group, None) for group in dismissed]
    counts = {**(live.counts or {}), DISMISSED: dismissed_count}
    matching = live_total + (dismissed_count if not stage or stage == DISMISSED else 0)
    return Listing(rows, [(s, label, counts.get(s, 0)) for s, label in STAGE_LABELS.items()],
                   await _total(session), matching, page,
                   max(1, -(-matching // PAGE_SIZE)), list(live.owners.values()),
                   await archive_in_use(session))


def _row(context: Context, group: CustomerGroup, found: GroupOverview | None) -> GroupRow:
    segment = context.flows.routing.segments.get(group.segment or "")
    health = found.health if found is not None else None
    return GroupRow(
        chat_id=group.chat_id, name=group.name or group.chat_id, segment=group.segment or "",
        segment_label=segment.label if segment else (group.segment or NO_SEGMENT_LABEL),
        owner=group.owner or NONE, members=group.member_count,
        ideal=segment.ideal_size if segment else None,
        stage=health.stage if health is not None else DISMISSED,
        score=health.score if health is not None else None, signals=_signals(found),
        in_pool=group.chat_id in context.pooled,
        filled=local(group.filled_at, "%Y-%m-%d") if group.filled_at else "",
        overflowing=group.chat_id in context.pooled and group.filled_at is not None,
        source=found.activity.source if found is not None else "",
        activity=_activity(found, group.owner in context.owner_figures),
        onboarding=[_run_text(run, context) for run in context.runs.get(group.chat_id, [])],
        migration=_migration_text(context.migrations.get(group.chat_id), context.groups))


def _signals(found: GroupOverview | None) -> list[str]:
    if found is None:
        return [NONE]
    health = found.health
    lines = [f"入群 {health.joins} · 退群 {health.quits}", f"确认发布 {health.confirmed} 天"]
    if health.speakers is not None:
        lines.append(f"客户发言 {health.speakers} 人 · {health.messages} 条")
    return lines


def _activity(found: GroupOverview | None, owner_figures: bool) -> list[str]:
    """The last 7 days from the archive; in fallback no figure (unknown, not zero), only
    where its owner's are."""
    if found is None:
        return []
    if found.activity.source != ARCHIVE:
        return ["群主的企业微信统计见表下"] if owner_figures else []
    a = found.activity
    return [f"消息 {a.messages_7d}", f"发言客户 {a.speakers_7d} 人",
            f"员工消息 {a.staff_messages_7d}"]


def _run_text(run: SopRun, context: Context) -> str:
    campaign = context.flows.onboarding.get(run.campaign)
    length = campaign.length if campaign else run.last_day
    day = onboarding.day_of(run, context.today)
    if run.status == onboarding.DONE:
        return f"{run.campaign}：已完成（{length} 天）"
    if day < 1:
        return f"{run.campaign}：{run.started_on} 开始"
    if run.status == onboarding.PAUSED:
        return f"{run.campaign}：已暂停 · 第 {day}/{length} 天"
    return f"{run.campaign}：第 {day}/{length} 天"


def _migration_text(plan: GroupMigration | None, groups: dict[str, CustomerGroup]) -> str:
    if plan is None:
        return ""
    target = groups.get(plan.target_chat_id)
    invited = len(json.loads(plan.members))
    return (f"{local(plan.created_at, '%Y-%m-%d')} 已安排迁往「"
            f"{target.name if target else plan.target_chat_id}」，邀请 {invited} 人")


def _of_segment(segment: str | None) -> list[ColumnElement[bool]]:
    if segment is None:
        return []
    if segment == "":
        return [CustomerGroup.segment.is_(None)]
    return [CustomerGroup.segment == segment]


async def _dismissed_count(session: AsyncSession, segment: str | None) -> int:
    return await session.scalar(select(func.count()).select_from(CustomerGroup).where(
        CustomerGroup.status == DISMISSED, *_of_segment(segment))) or 0


async def _dismissed(session: AsyncSession, segment: str | None, offset: int,
                     limit: int) -> list[CustomerGroup]:
    if limit <= 0:
        return []
    return list(await session.scalars(
        select(CustomerGroup).where(CustomerGroup.status == DISMISSED, *_of_segment(segment))
        .order_by(CustomerGroup.name, CustomerGroup.chat_id).offset(offset).limit(limit)))


async def _total(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(CustomerGroup)) or 0


async def _groups(session: AsyncSession, chat_ids: list[str]) -> dict[str, CustomerGroup]:
    """The page's groups and their migration targets."""
    targets = select(GroupMigration.target_chat_id).where(GroupMigration.chat_id.in_(chat_ids))
    return {g.chat_id: g for g in await session.scalars(select(CustomerGroup).where(
        CustomerGroup.chat_id.in_(chat_ids) | CustomerGroup.chat_id.in_(targets)))}


async def _runs(session: AsyncSession, chat_ids: list[str]) -> dict[str, list[SopRun]]:
    found: dict[str, list[SopRun]] = {}
    for run in await session.scalars(select(SopRun).where(SopRun.chat_id.in_(chat_ids))
                                     .order_by(SopRun.id)):
        found.setdefault(run.chat_id, []).append(run)
    return found


async def _migrations(session: AsyncSession, chat_ids: list[str]) -> dict[str, GroupMigration]:
    return {m.chat_id: m for m in await session.scalars(
        select(GroupMigration).where(GroupMigration.chat_id.in_(chat_ids)))}
