"""What the groups page shows: every customer group with its segment, size against the
segment's ideal, stage and health (app/groups/lifecycle.py's assessment, the same as `sopbot
groups --stage`), its onboarding runs, whether new members are seated in it now, and a zombie's
migration plan. Read from the database only: nothing here calls WeCom."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar import onboarding
from app.calendar.models import SopRun
from app.faces.console.labels import NO_SEGMENT
from app.faces.console.times import NONE, local, local_day
from app.flows import Flows
from app.groups import pools
from app.groups.lifecycle import DAILY, FILLING, STRONG, WEAK, Health, assess
from app.groups.models import DISMISSED, CustomerGroup, GroupMigration

# In the order the page lists them: the zombies, which need a decision, first; then a group's
# life: filling (stages count from the day it reaches its ideal size), strong, daily.
STAGE_LABELS = {WEAK: "弱运营 · 僵尸群", FILLING: "招募期（未满员）", STRONG: "强运营（前期）",
                DAILY: "日常运营（中期）", DISMISSED: "已解散"}
NO_SEGMENT_LABEL = "未分群"  # a group whose name matches no segment


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
    signals: list[str]  # the window's joins, quits, active customers, confirmed posts
    in_pool: bool  # behind the segment's 加入群聊 code: new members are seated here
    filled: str  # the day it reached its ideal size
    overflowing: bool  # filled, yet still behind the code: its segment's pool is empty
    onboarding: list[str] = field(default_factory=list)
    migration: str = ""

    @property
    def stage_label(self) -> str:
        return STAGE_LABELS[self.stage]

    @property
    def zombie(self) -> bool:
        return self.stage == WEAK

    @property
    def size(self) -> str:
        return f"{self.members}/{self.ideal}" if self.ideal else f"{self.members}/{NONE}"


@dataclass(frozen=True)
class Context:
    """What the rows are built from, read in one session."""

    flows: Flows
    today: date
    groups: dict[str, CustomerGroup]
    runs: dict[str, list[SopRun]]
    migrations: dict[str, GroupMigration]
    pooled: set[str]


async def load(session: AsyncSession, flows: Flows, now: datetime) -> list[GroupRow]:
    """Every group, zombies first, then in routing.yaml's segment order, then by name."""
    health = {h.chat_id: h for h in await assess(session, flows.lifecycle, now)}
    context = Context(flows, local_day(now), await _groups(session), await _runs(session),
                      await _migrations(session), await pools.pooled_chat_ids(session))
    rows = [_row(context, group, health.get(chat_id))
            for chat_id, group in context.groups.items()]
    return sorted(rows, key=lambda r: _order(r, flows))


def _order(row: GroupRow, flows: Flows) -> tuple[int, int, str, str]:
    segments = list(flows.routing.segments)
    segment = segments.index(row.segment) if row.segment in segments else len(segments)
    return list(STAGE_LABELS).index(row.stage), segment, row.name, row.chat_id


def filtered(rows: list[GroupRow], segment: str, stage: str) -> list[GroupRow]:
    wanted = "" if segment == NO_SEGMENT else segment
    return [r for r in rows if (not segment or r.segment == wanted)
            and (not stage or r.stage == stage)]


def stage_counts(rows: list[GroupRow]) -> list[tuple[str, str, int]]:
    """(stage, label, how many) for the summary above the table."""
    return [(stage, label, sum(r.stage == stage for r in rows))
            for stage, label in STAGE_LABELS.items()]


def _row(context: Context, group: CustomerGroup, health: Health | None) -> GroupRow:
    segment = context.flows.routing.segments.get(group.segment or "")
    stage = health.stage if health is not None else DISMISSED
    return GroupRow(
        chat_id=group.chat_id, name=group.name or group.chat_id, segment=group.segment or "",
        segment_label=segment.label if segment else (group.segment or NO_SEGMENT_LABEL),
        owner=group.owner or NONE, members=group.member_count,
        ideal=segment.ideal_size if segment else None, stage=stage,
        score=health.score if health is not None else None, signals=_signals(health),
        in_pool=group.chat_id in context.pooled,
        filled=local(group.filled_at, "%Y-%m-%d") if group.filled_at else "",
        overflowing=group.chat_id in context.pooled and group.filled_at is not None,
        onboarding=[_run_text(run, context) for run in context.runs.get(group.chat_id, [])],
        migration=_migration_text(context.migrations.get(group.chat_id), context.groups))


def _signals(health: Health | None) -> list[str]:
    if health is None:
        return [NONE]
    return [f"入群 {health.joins} · 退群 {health.quits}",
            f"客服活跃 {health.active} · 确认发布 {health.confirmed} 天"]


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


async def _groups(session: AsyncSession) -> dict[str, CustomerGroup]:
    return {g.chat_id: g for g in await session.scalars(
        select(CustomerGroup).order_by(CustomerGroup.id))}


async def _runs(session: AsyncSession) -> dict[str, list[SopRun]]:
    found: dict[str, list[SopRun]] = {}
    for run in await session.scalars(select(SopRun).order_by(SopRun.id)):
        found.setdefault(run.chat_id, []).append(run)
    return found


async def _migrations(session: AsyncSession) -> dict[str, GroupMigration]:
    return {m.chat_id: m for m in await session.scalars(select(GroupMigration))}
