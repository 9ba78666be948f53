"""Each group's stage and health (PLAYBOOK.md "stages"), from the signals the API gives: joins
and quits (group_member), its customers' 微信客服 activity (kf_conversation) and the calendar
posts its owner confirmed (calendar_post).

Stages are counted from the day a group reaches its ideal size (`filled_at`; for a group full
when sopbot first read it, its creation in WeCom). Before that it is `filling`, still taking
its first members, and never weak. Then `strong` for `strong_days`, then `daily`. A daily group
is `weak`, a zombie that gets a migration plan, only on a full window of daily-stage signals:
`window_days` after its strong month, health below the threshold and no join for a while."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar.models import CalendarPost, GroupDay
from app.groups import pools
from app.groups.lifecycle_flows import LifecycleFlows
from app.groups.models import LIVE, CustomerGroup, GroupMember
from app.groups.service import CUSTOMER
from app.kf.models import KfConversation

FILLING, STRONG, DAILY, WEAK = "filling", "strong", "daily", "weak"
STAGES = (FILLING, STRONG, DAILY, WEAK)  # in the order of a group's life
@dataclass(frozen=True)
class Health:
    chat_id: str
    name: str
    segment: str | None
    owner: str
    members: int
    stage: str
    score: int
    joins: int
    quits: int
    active: int  # customers with 微信客服 activity in the window
    confirmed: int  # days with a confirmed calendar post


async def assess(session: AsyncSession, flows: LifecycleFlows, now: datetime) -> list[Health]:
    """Every live group's stage and health score (0-100)."""
    since = now - timedelta(days=flows.window_days)
    quiet_since = now - timedelta(days=flows.quiet_days)
    joins = await _count(session, GroupMember.joined_at >= since)
    quits = await _count(session, GroupMember.left_at >= since)
    recent = await _count(session, GroupMember.joined_at >= quiet_since)
    active = dict((await session.execute(
        # Customers, not conversations: one customer may talk to several kf accounts.
        select(GroupMember.chat_id, func.count(GroupMember.userid.distinct())).join(
            KfConversation, KfConversation.external_userid == GroupMember.userid)
        .where(GroupMember.left_at.is_(None), KfConversation.last_customer_at >= since)
        .group_by(GroupMember.chat_id))).all())
    confirmed = dict((await session.execute(
        select(GroupDay.chat_id, func.count()).join(
            CalendarPost, CalendarPost.key == GroupDay.post_key)
        .where(CalendarPost.task_status == "confirmed", CalendarPost.at >= since)
        .group_by(GroupDay.chat_id))).all())
    pooled = await pools.pooled_chat_ids(session)
    found = []
    for group in await session.scalars(select(CustomerGroup).where(CustomerGroup.status == LIVE)
                                       .order_by(CustomerGroup.id)):
        signals = (joins.get(group.chat_id, 0), quits.get(group.chat_id, 0),
                   active.get(group.chat_id, 0), confirmed.get(group.chat_id, 0))
        score = _score(group.member_count, *signals, flows.window_days)
        # New members still come in: seated by the segment's code, or joined lately.
        lively = group.chat_id in pooled or bool(signals[0] or recent.get(group.chat_id))
        stage = _stage(group, score, lively, now, flows)
        found.append(Health(group.chat_id, group.name, group.segment, group.owner,
                            group.member_count, stage, score, *signals))
    return found


async def _count(session: AsyncSession, condition: ColumnElement[bool]) -> dict[str, int]:
    rows = await session.execute(select(GroupMember.chat_id, func.count()).where(
        GroupMember.type == CUSTOMER, condition).group_by(GroupMember.chat_id))
    return dict(rows.all())


def _score(members: int, joins: int, quits: int, active: int, confirmed: int,
           window_days: int) -> int:
    """0 for a silent group: joins up to +25, customers active in 微信客服 up to +40 (a fifth
    of the group active is full marks), calendar posts its owner confirmed up to +35 (every
    day of the window), quits down to -30."""
    share = active / members if members else 0.0
    score = (min(joins * 5, 25) + round(min(share * 200, 40))
             + round(35 * min(confirmed / window_days, 1.0)) - min(quits * 5, 30))
    return max(0, min(100, score))


def _stage(group: CustomerGroup, score: int, lively: bool, now: datetime,
           flows: LifecycleFlows) -> str:
    filled = _filled_since(group)
    if filled is None:
        return FILLING
    past_strong = now - filled - timedelta(days=flows.strong_days)
    if past_strong < timedelta(0):
        return STRONG
    # The window's signals judge the daily stage only once they all fall in it: a group fresh
    # out of its strong month is not a zombie because the window reaches back into it.
    full_window = past_strong >= timedelta(days=flows.window_days)
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


def lines(found: list[Health], stage: str | None) -> list[str]:
    shown = [h for h in found if stage is None or h.stage == stage]
    if not shown:
        return [f"no {stage or ''} groups".replace("  ", " ")]
    return [f"{h.stage:<7} {h.score:>3} {h.name or h.chat_id:<22} {h.segment or '-':<14} "
            f"{h.members:>4} members  +{h.joins} -{h.quits} joins/quits, {h.active} active, "
            f"{h.confirmed} posts confirmed  {h.chat_id}" for h in shown]
