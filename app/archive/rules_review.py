"""Reviewing the group rules' ledger (member_strike): the strikes with their evidence, what each
led to, an operator's decision on a strike, and the praise candidates.

A decision is conditional on the strike's status as it is when it runs: `dismiss` takes an
active strike off the member's points (status dismissed); `confirm` records that an operator
looked and agrees, and puts a dismissed strike back (active again; its thresholds are not
evaluated again: the next strike is). A voided strike (its message was recalled) takes no
decision. Who decided and when is kept on the strike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.models import ArchivedMessage, MemberStrike
from app.archive.rules import (
    ACTIVE,
    CONTRIBUTION,
    DISMISSED,
    KEY_CODES,
    VOIDED,
    outbox_key,
)
from app.directory.models import PlatformUser
from app.engine.outbox.models import OutboxMessage
from app.groups.models import CustomerGroup
from app.members.models import Member

DISMISS, CONFIRM = "dismiss", "confirm"
DECISIONS = {DISMISS: (ACTIVE,), CONFIRM: (ACTIVE, DISMISSED)}  # the statuses each applies to
STATUSES = (ACTIVE, DISMISSED, VOIDED)


@dataclass(frozen=True)
class LedgerFilter:
    kind: str = ""  # "" every kind, else violation | contribution
    status: str = ""  # "" every status
    chat_id: str = ""  # "" every group
    rule: str = ""


@dataclass(frozen=True)
class Entry:
    """One strike with what the console shows of it."""

    id: int
    chat_id: str
    group: str | None  # the group's name, when sopbot knows the group
    userid: str
    member_id: int | None  # the member record, when there is one
    name: str | None  # the directory's name
    phone: str | None  # the member's phone (masked by whoever shows it)
    msgid: str
    rule: str
    kind: str
    points: int
    at: datetime
    status: str
    action: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    text: str | None  # the message's text, while kept (None: not text, recalled, or purged)
    msgtype: str | None  # None: the message is not in the archive table
    recalled: bool


def _entries() -> Any:
    return (select(MemberStrike, CustomerGroup.name, Member.id, PlatformUser.name, Member.phone,
                   ArchivedMessage.text, ArchivedMessage.msgtype, ArchivedMessage.recalled)
            .outerjoin(CustomerGroup, CustomerGroup.chat_id == MemberStrike.chat_id)
            .outerjoin(Member, Member.external_userid == MemberStrike.userid)
            .outerjoin(PlatformUser, PlatformUser.platform_user_id == Member.platform_user_id)
            .outerjoin(ArchivedMessage, ArchivedMessage.msgid == MemberStrike.msgid))


def _entry(row: Any) -> Entry:
    strike, group, member_id, name, phone, text, msgtype, recalled = row
    return Entry(strike.id, strike.chat_id, group, strike.userid, member_id, name, phone,
                 strike.msgid, strike.rule, strike.kind, strike.points, strike.at,
                 strike.status, strike.action, strike.reviewed_by, strike.reviewed_at,
                 text, msgtype, bool(recalled))


def _conditions(wanted: LedgerFilter) -> list[Any]:
    found = []
    for column, value in ((MemberStrike.kind, wanted.kind), (MemberStrike.status, wanted.status),
                          (MemberStrike.chat_id, wanted.chat_id), (MemberStrike.rule, wanted.rule)):
        if value:
            found.append(column == value)
    return found


async def ledger(session: AsyncSession, wanted: LedgerFilter, limit: int,
                 offset: int = 0) -> tuple[int, list[Entry]]:
    """(how many strikes match, a page of them newest first by the messages' times)."""
    where = _conditions(wanted)
    count = await session.scalar(select(func.count()).select_from(MemberStrike).where(*where))
    rows = await session.execute(_entries().where(*where)
                                 .order_by(MemberStrike.at.desc(), MemberStrike.id.desc())
                                 .offset(offset).limit(limit))
    return count or 0, [_entry(row) for row in rows]


async def entry(session: AsyncSession, strike_id: int) -> Entry | None:
    row = (await session.execute(_entries().where(MemberStrike.id == strike_id))).first()
    return _entry(row) if row is not None else None


async def messages_sent(session: AsyncSession, entries: list[Entry]) -> dict[int, list[
        tuple[str, str]]]:
    """Per strike id, the messages its thresholds queued: (action, outbox status)."""
    keys = {outbox_key(action, e.msgid, e.rule): (e.id, action)
            for e in entries if e.action for action in KEY_CODES}
    if not keys:
        return {}
    found: dict[int, list[tuple[str, str]]] = {}
    for key, status in await session.execute(select(
            OutboxMessage.idempotency_key, OutboxMessage.status).where(
            OutboxMessage.idempotency_key.in_(keys))):
        strike_id, action = keys[key]
        found.setdefault(strike_id, []).append((action, status))
    for sent in found.values():
        sent.sort(key=lambda item: list(KEY_CODES).index(item[0]))
    return found


async def decide(session: AsyncSession, ids: list[int], decision: str, reviewer: str,
                 now: datetime) -> list[int]:
    """Apply `decision` to the strikes whose status allows it; the ids it changed."""
    statuses = DECISIONS[decision]
    if not ids:
        return []
    result = await session.execute(
        update(MemberStrike).where(MemberStrike.id.in_(ids), MemberStrike.status.in_(statuses))
        .values(status=DISMISSED if decision == DISMISS else ACTIVE, reviewed_by=reviewer,
                reviewed_at=now).returning(MemberStrike.id)
        .execution_options(synchronize_session=False))
    return sorted(result.scalars().all())


@dataclass(frozen=True)
class Candidate:
    """A member whose contributions in a group reached the praise threshold."""

    chat_id: str
    group: str | None
    userid: str
    member_id: int | None
    name: str | None
    phone: str | None
    points: int
    answers: int
    intros: int
    last_at: datetime


async def praise_candidates(session: AsyncSession, since: datetime, threshold: int,
                            limit: int = 50) -> list[Candidate]:
    """Per group, the members with at least `threshold` active contribution points since
    `since`, most points first."""
    points = func.sum(MemberStrike.points)
    totals = (select(MemberStrike.chat_id, MemberStrike.userid, points.label("points"),
                     func.sum(case((MemberStrike.rule == "answer", 1), else_=0)).label("answers"),
                     func.sum(case((MemberStrike.rule == "intro", 1), else_=0)).label("intros"),
                     func.max(MemberStrike.at).label("last_at"))
              .where(MemberStrike.kind == CONTRIBUTION, MemberStrike.status == ACTIVE,
                     MemberStrike.at >= since)
              .group_by(MemberStrike.chat_id, MemberStrike.userid)
              .having(points >= threshold).subquery())
    rows = await session.execute(
        select(totals, CustomerGroup.name, Member.id, PlatformUser.name, Member.phone)
        .outerjoin(CustomerGroup, CustomerGroup.chat_id == totals.c.chat_id)
        .outerjoin(Member, Member.external_userid == totals.c.userid)
        .outerjoin(PlatformUser, PlatformUser.platform_user_id == Member.platform_user_id)
        .order_by(totals.c.points.desc(), totals.c.last_at.desc()).limit(limit))
    return [Candidate(chat_id, group, userid, member_id, name, phone, int(total), int(answers),
                      int(intros), _aware(last_at))
            for chat_id, userid, total, answers, intros, last_at, group, member_id, name, phone
            in rows]


async def ledger_groups(session: AsyncSession) -> list[tuple[str, str]]:
    """The group filter's choices: every customer group sopbot knows, by name (a few hundred
    rows; the ledger itself is never scanned for them)."""
    rows = await session.execute(select(CustomerGroup.chat_id, CustomerGroup.name))
    return sorted(((chat_id, name or chat_id) for chat_id, name in rows),
                  key=lambda item: (item[1], item[0]))


def _aware(at: Any) -> datetime:
    # max() over a UTCDateTime column comes back as SQLite's naive text, PostgreSQL's aware.
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    assert isinstance(at, datetime)
    return at if at.tzinfo else at.replace(tzinfo=UTC)
