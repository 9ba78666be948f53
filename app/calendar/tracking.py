"""Following each mass task the calendar created until its owner confirms it, or not:
created (WeCom's msgid, from the outbox's settle hook) → reminded (remind_groupmsg_send, at
most 3 times a day, through the outbox) → confirmed (get_groupmsg_task says the owner sent it)
or missed (not sent within a day). The confirmation rate per owner and per post
(`sopbot calendar report`, the console's calendar page) comes from it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar.models import CalendarPost
from app.calendar.planner import MASS_TASK
from app.engine.db import Database
from app.engine.logs import get_logger
from app.engine.outbox import store as outbox
from app.engine.outbox.models import DEAD, EXPIRED, SENT, UNKNOWN
from app.engine.outbox.outcomes import Outcome
from app.engine.outbox.store import Claimed
from app.engine.wecom.api_outreach import CancelGroupMsgSend, GetGroupMsgTask, RemindGroupMsgSend
from app.engine.wecom.client import WeComClient
from app.engine.wecom.errors import WeComError

log = get_logger("sopbot.calendar")
CREATED, REMINDED, CONFIRMED, MISSED, FAILED = (
    "created", "reminded", "confirmed", "missed", "failed")
RECEIVED = (CREATED, REMINDED, CONFIRMED, MISSED)  # tasks an owner got to confirm
REMIND_AFTER = timedelta(hours=2)  # unconfirmed this long after its time: remind the owner
REMIND_EVERY = timedelta(hours=4)
MAX_REMINDERS = 3  # WeCom: at most 3 reminders per task per 24 h
MISSED_AFTER = timedelta(hours=24)
SENT_STATUS = 2  # get_groupmsg_task: the member sent it


async def task_created(session: AsyncSession, claimed: Claimed, outcome: Outcome,
                       now: datetime) -> None:
    """Settle hook (kind calendar_post): a mass task's msgid, or that WeCom refused it."""
    if outcome.label == SENT:
        msgid = json.loads(outcome.values.get("response") or "{}").get("msgid")
        await session.execute(update(CalendarPost).where(
            CalendarPost.key == claimed.idempotency_key, CalendarPost.transport == MASS_TASK)
            .values(msgid=msgid or None, task_status=CREATED if msgid else FAILED))
    elif outcome.label in (DEAD, EXPIRED, UNKNOWN):
        await session.execute(update(CalendarPost).where(
            CalendarPost.key == claimed.idempotency_key).values(task_status=FAILED))


@dataclass
class Tracked:
    confirmed: int = 0
    reminded: int = 0
    missed: int = 0


async def track(db: Database, wecom: WeComClient, now: datetime) -> Tracked:
    """Look at every open task: confirmed, to be reminded, or missed."""
    tracked = Tracked()
    async with db.reader() as session:
        open_tasks = list(await session.scalars(select(CalendarPost).where(
            CalendarPost.task_status.in_((CREATED, REMINDED)),
            CalendarPost.msgid.is_not(None))))
    for post in open_tasks:
        try:
            sent_at = await _sent_at(wecom, post)
        except WeComError as exc:
            # Not known now; past its day it is missed all the same (never polled for ever).
            log.warning("calendar_task_check_failed", key=post.key, error=str(exc))
            if now - post.at < MISSED_AFTER:
                continue
            sent_at = None
        async with db.unit_of_work() as session:
            await _advance(session, post, sent_at, now, tracked)
    return tracked


async def _sent_at(wecom: WeComClient, post: CalendarPost) -> int | None:
    assert post.msgid is not None
    answer = await wecom.call(GetGroupMsgTask(msgid=post.msgid))
    task = next((t for t in answer.task_list if t.userid == post.target), None)
    return (task.send_time or 1) if task is not None and task.status == SENT_STATUS else None


async def _advance(session: AsyncSession, post: CalendarPost, sent_at: int | None,
                   now: datetime, tracked: Tracked) -> None:
    values: dict[str, object] = {}
    if sent_at is not None:
        values = {"task_status": CONFIRMED,
                  "confirmed_at": datetime.fromtimestamp(sent_at, now.tzinfo)}
        tracked.confirmed += 1
    elif now - post.at >= MISSED_AFTER:
        values = {"task_status": MISSED}
        tracked.missed += 1
        log.warning("calendar_task_missed", key=post.key, owner=post.target)
        # Cancelled, so a late confirmation cannot take a later day's one message.
        assert post.msgid is not None
        await outbox.enqueue(session, f"cancel:{post.msgid}",
                             CancelGroupMsgSend(msgid=post.msgid), kind="calendar_cancel")
    elif _remind_now(post, now):
        n = post.reminders + 1
        assert post.msgid is not None
        await outbox.enqueue(session, f"remind:{post.msgid}:{n}",
                             RemindGroupMsgSend(msgid=post.msgid), kind="calendar_reminder")
        values = {"task_status": REMINDED, "reminders": n, "reminded_at": now}
        tracked.reminded += 1
    if values:
        await session.execute(update(CalendarPost).where(CalendarPost.id == post.id)
                              .values(**values))


def _remind_now(post: CalendarPost, now: datetime) -> bool:
    if post.reminders >= MAX_REMINDERS or now - post.at < REMIND_AFTER:
        return False
    return post.reminded_at is None or now - post.reminded_at >= REMIND_EVERY


@dataclass(frozen=True)
class Tally:
    """The mass tasks of one owner, or of one post of a segment (`segment` set)."""

    name: str  # the owner's userid, or the posts the task carried (morning,slot0,...)
    segment: str | None
    tasks: int
    confirmed: int
    missed: int
    open: int  # created or reminded, not decided yet

    @property
    def rate(self) -> float:
        return self.confirmed / self.tasks if self.tasks else 0.0


@dataclass(frozen=True)
class Confirmations:
    since: datetime
    tasks: int
    by_owner: list[Tally]
    by_post: list[Tally]


async def confirmations(session: AsyncSession, since: datetime) -> Confirmations:
    """Confirmation rate per owner and per post of the mass tasks since `since`: the tasks
    owners received (a skipped delivery, or one WeCom refused to create, is none of theirs)."""
    rows = list(await session.scalars(select(CalendarPost).where(
        CalendarPost.transport == MASS_TASK, CalendarPost.at >= since,
        CalendarPost.task_status.in_(RECEIVED))))
    return Confirmations(since, len(rows), _tallies(rows, lambda p: (None, p.target)),
                         _tallies(rows, lambda p: (p.segment, p.posts)))


def _tallies(rows: list[CalendarPost],
             key: Callable[[CalendarPost], tuple[str | None, str]]) -> list[Tally]:
    groups: dict[tuple[str | None, str], list[CalendarPost]] = {}
    for post in rows:
        groups.setdefault(key(post), []).append(post)
    # Sorted as "segment posts" reads, the order the report always had.
    ordered = sorted(groups.items(), key=lambda kv: " ".join(filter(None, kv[0])))
    return [Tally(name, segment, len(posts), sum(p.task_status == CONFIRMED for p in posts),
                  sum(p.task_status == MISSED for p in posts),
                  sum(p.task_status in (CREATED, REMINDED) for p in posts))
            for (segment, name), posts in ordered]


async def report(session: AsyncSession, since: datetime) -> list[str]:
    """`sopbot calendar report`: the confirmations as lines."""
    found = await confirmations(session, since)
    lines = [f"mass tasks since {since:%Y-%m-%d %H:%M}Z: {found.tasks}"]
    named = [[(f"{t.segment} {t.name}" if t.segment else t.name, t) for t in tallies]
             for tallies in (found.by_owner, found.by_post)]
    width = max([28, *(len(name) for pairs in named for name, _ in pairs)])  # one column
    for title, pairs in zip(("owner", "post"), named, strict=True):
        lines.append(f"by {title}:")
        for name, t in pairs:
            lines.append(f"  {name:<{width}} {t.tasks:>4} task(s) {t.confirmed:>4} confirmed "
                         f"{t.missed:>4} missed {t.open:>4} open  {t.rate:>6.1%}")
    return lines
