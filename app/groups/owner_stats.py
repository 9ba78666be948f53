"""Yesterday's per-owner figures from WeCom (`groupchat/statistic`) into owner_group_stat: the
honest activity signal of a corp without the chat archive, shown as each owner's, never as a
group's (app/archive/reports.py `owner_figures`).

Run hourly and done once a day: only the owners of live groups that have no row for yesterday
are asked, up to 100 a call, so a run cut short finishes in the next and a day complete costs
nothing. Days are Asia/Shanghai days; WeCom has yesterday's figures at the earliest."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.activity import local_day
from app.archive.models import OwnerGroupStat
from app.engine.config import SHANGHAI
from app.engine.db import Database, insert_for
from app.engine.logs import get_logger
from app.engine.wecom.api_contact import OwnerFilter
from app.engine.wecom.api_groupstat import OWNERS_MAX, GroupChatStatistic, GroupStatItem
from app.engine.wecom.client import WeComClient
from app.groups.models import LIVE, CustomerGroup

log = get_logger("sopbot.groups.owner_stats")
FIELDS = ("chat_total", "chat_has_msg", "member_total", "member_has_msg", "msg_total",
          "new_member_cnt")


def day_start(day: date) -> int:
    """A local day's 00:00 as unix seconds: how groupchat/statistic names a day."""
    return int(datetime.combine(day, time(), SHANGHAI).timestamp())


async def read_owner_stats(db: Database, wecom: WeComClient, now: datetime) -> int:
    """Store yesterday's figures of the owners still missing them; how many were stored."""
    day = local_day(now) - timedelta(days=1)
    async with db.reader() as session:
        owners = await missing_owners(session, day)
    stored = 0
    for start in range(0, len(owners), OWNERS_MAX):
        batch = owners[start:start + OWNERS_MAX]
        answer = await wecom.call(GroupChatStatistic(
            day_begin_time=day_start(day), day_end_time=day_start(day),
            owner_filter=OwnerFilter(userid_list=batch), limit=len(batch)))
        items = list({i.owner: i for i in answer.items if i.owner in batch}.values())
        async with db.unit_of_work() as session:
            await store(session, day, items, now)
        stored += len(items)
    if owners:
        log.info("owner_stats_read", day=str(day), asked=len(owners), stored=stored)
    return stored


async def missing_owners(session: AsyncSession, day: date) -> list[str]:
    """The owners of live groups with no figures stored for `day`."""
    have = select(OwnerGroupStat.owner).where(OwnerGroupStat.day == day)
    return list(await session.scalars(
        select(CustomerGroup.owner).where(CustomerGroup.status == LIVE, CustomerGroup.owner != "",
                                          CustomerGroup.owner.not_in(have))
        .distinct().order_by(CustomerGroup.owner)))


async def store(session: AsyncSession, day: date, items: list[GroupStatItem],
                now: datetime) -> None:
    """Upsert one row per owner and day (a later read of the day replaces the figures)."""
    rows = [{"owner": i.owner, "day": day, "synced_at": now,
             **{name: getattr(i.data, name) for name in FIELDS}} for i in items]
    if not rows:
        return
    statement = insert_for(session, OwnerGroupStat)
    await session.execute(statement.on_conflict_do_update(
        index_elements=["owner", "day"],
        set_={name: statement.excluded[name] for name in (*FIELDS, "synced_at")}), rows)
