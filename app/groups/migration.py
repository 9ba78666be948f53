"""Zombie groups (stage `weak`, app/groups/lifecycle.py) get a migration plan once: the
still-active customers (where the chat archive covers the group, those who spoke in it in the
window; all its customers when none did, or when no archive says who talks), the segment's live
group to invite them to, the invitation as a mass task from each customer's own staff member,
and an app message asking the owner to dissolve the group."""

from __future__ import annotations

import json
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive import reports
from app.engine.logs import get_logger
from app.engine.outbox import store as outbox
from app.engine.wecom.api import SendMessage, Text
from app.engine.wecom.api_outreach import AddMsgTemplate
from app.groups import pools
from app.groups.lifecycle import ARCHIVE, WEAK, Health, assess
from app.groups.models import CustomerGroup, GroupMember, GroupMigration
from app.groups.service import CUSTOMER
from app.groups.sources import GroupSources
from app.members.models import Member

log = get_logger("sopbot.groups.lifecycle")
KIND = "group_migration"


async def plan_migrations(session: AsyncSession, flows: GroupSources, now: datetime,
                          agent_id: int | None) -> list[str]:
    """Plan (and queue) the migration of every zombie group that has none yet."""
    planned = set(await session.scalars(select(GroupMigration.chat_id)))
    found = await assess(session, flows.lifecycle, now)
    weak = {h.chat_id for h in found if h.stage == WEAK}
    done = []
    for health in found:
        if health.chat_id in weak and health.segment and health.chat_id not in planned:
            line = await _plan(session, flows, health, now, agent_id, weak | planned)
            if line:
                done.append(line)
    return done


async def _plan(session: AsyncSession, flows: GroupSources, health: Health, now: datetime,
                agent_id: int | None, avoid: set[str]) -> str | None:
    assert health.segment is not None
    seat = await _target(session, health.segment, avoid)
    if seat is None:
        log.warning("group_migration_no_target", chat_id=health.chat_id, segment=health.segment)
        return None
    invited = await _still_active(session, health, reports.first_day(
        now, flows.lifecycle.window_days))
    texts = {"group": health.name, "target": seat.group_name, "qr": seat.qr_code}
    by_staff: dict[str, list[str]] = {}
    for external_userid, staff in invited:
        by_staff.setdefault(staff, []).append(external_userid)
    for staff, customers in sorted(by_staff.items()):
        await outbox.enqueue(session, f"migrate-invite:{health.chat_id}:{staff}", AddMsgTemplate(
            chat_type="single", sender=staff, external_userid=customers,
            text=Text(content=flows.lifecycle.invitation.format(**texts))), kind=KIND)
    if agent_id is not None and health.owner:
        await outbox.enqueue(session, f"migrate-owner:{health.chat_id}", SendMessage(
            agentid=agent_id, touser=health.owner, msgtype="text",
            text=Text(content=flows.lifecycle.owner_task.format(**texts))), kind=KIND)
    session.add(GroupMigration(chat_id=health.chat_id, target_chat_id=seat.chat_id,
                               members=json.dumps([c for c, _ in invited]), score=health.score,
                               created_at=now))
    log.info("group_migration_planned", chat_id=health.chat_id, target=seat.chat_id,
             invited=len(invited))
    return f"{health.chat_id} → {seat.chat_id}: {len(invited)} member(s) invited"


async def _target(session: AsyncSession, segment: str, avoid: set[str]) -> pools.Seat | None:
    """The first group behind the segment's code that is not a zombie itself."""
    pool = await pools.pool_of(session, segment)
    if pool is None:
        return None
    for chat_id in pools.chat_ids(pool):
        if chat_id not in avoid:
            name = await session.scalar(select(CustomerGroup.name).where(
                CustomerGroup.chat_id == chat_id))
            return pools.Seat(chat_id, name or chat_id, pool.qr_code)
    return None


async def _still_active(session: AsyncSession, health: Health,
                        since: date) -> list[tuple[str, str]]:
    """(external_userid, their staff member) of the customers to invite."""
    present = (select(GroupMember.userid, Member.staff_userid)
               .join(Member, Member.external_userid == GroupMember.userid)
               .where(GroupMember.chat_id == health.chat_id, GroupMember.left_at.is_(None),
                      GroupMember.type == CUSTOMER).order_by(GroupMember.userid))
    if health.source == ARCHIVE:
        spoke = present.where(reports.spoke_since(GroupMember.chat_id, GroupMember.userid, since))
        rows = [(u, s) for u, s in await session.execute(spoke)]
        if rows:
            return rows
    return [(u, s) for u, s in await session.execute(present)]
