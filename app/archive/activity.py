"""Activity rollups from the chat archive: per group per day, per person per group per day, per
person per group. A page's messages are counted in Python first and written with one upsert per
table, so a page of 1,000 messages costs a handful of statements (DESIGN.md: 5,000 messages a
second on one core on SQLite). A recall takes its message back out of every count.

Days are Asia/Shanghai days, by the message's own time (`msgtime`), so a backlog read late lands
on the days it happened."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.models import (
    ArchivedMessage,
    ArchiveReader,
    GroupActivityDay,
    Speaker,
    SpeakerDay,
)
from app.engine.config import SHANGHAI
from app.engine.db import insert_for
from app.engine.wecom.archive_events import (
    CUSTOMER,
    CUSTOMER_PREFIXES,
    RECALL,
    SEND,
    STAFF,
    ArchiveMessage,
)

SD, GAD, SP = SpeakerDay.__table__, GroupActivityDay.__table__, Speaker.__table__


async def archive_in_use(session: AsyncSession) -> bool:
    """Whether a chat archive reader has run here: activity then comes from the archive."""
    return bool(await session.scalar(select(exists().where(ArchiveReader.id.is_not(None)))))


def local_day(at: datetime) -> date:
    return at.astimezone(SHANGHAI).date()


@dataclass
class _Person:
    kind: str
    first_at: datetime
    last_at: datetime
    messages: int = 0


@dataclass
class _Tally:
    """One page's counts, signed: a recall counts -1."""

    groups: Counter[tuple[str, date, str]] = field(default_factory=Counter)  # (chat, day, kind)
    days: Counter[tuple[str, date, str]] = field(default_factory=Counter)  # (chat, day, userid)
    people: dict[tuple[str, str], _Person] = field(default_factory=dict)

    def add(self, chat_id: str, userid: str, kind: str, at: datetime, sign: int) -> None:
        day = local_day(at)
        self.groups[chat_id, day, kind] += sign
        self.days[chat_id, day, userid] += sign
        person = self.people.setdefault((chat_id, userid), _Person(kind, at, at))
        person.first_at, person.last_at = min(person.first_at, at), max(person.last_at, at)
        person.messages += sign


async def count_page(session: AsyncSession, messages: Sequence[ArchiveMessage],
                     now: datetime) -> None:
    """The archive page step of the activity rollups (registered in handlers/group_talk.py)."""
    tally = _Tally()
    for message in messages:
        if message.action == SEND:
            tally.add(message.chat_id, message.sender, message.sender_kind, message.msgtime, 1)
    for row in await _recalled(session, [m.recalled_msgid for m in messages
                                         if m.action == RECALL and m.recalled_msgid]):
        tally.add(row.chat_id, row.sender, row.sender_kind, row.msgtime, -1)
    if tally.days:
        await _write_days(session, tally)
        await _write_groups(session, tally)
        await _write_people(session, tally)
        await _count_speakers(session, {(c, d) for c, d, _ in tally.days})


async def _recalled(session: AsyncSession, msgids: list[str]) -> Iterable[ArchivedMessage]:
    """The recalled messages this page takes back (each once: the reader marks a row recalled
    only when it was not already)."""
    if not msgids:
        return []
    return await session.scalars(select(ArchivedMessage).where(
        ArchivedMessage.msgid.in_(msgids), ArchivedMessage.recalled.is_(True)))


async def _write_days(session: AsyncSession, tally: _Tally) -> None:
    rows = [{"chat_id": c, "day": d, "userid": u, "messages": n, "answers": 0}
            for (c, d, u), n in tally.days.items() if n]
    if rows:
        # Core inserts, not the ORM's bulk path: a page's rows cost a third of the time.
        statement = insert_for(session, SD)
        await session.execute(statement.on_conflict_do_update(
            index_elements=["chat_id", "day", "userid"],
            set_={"messages": SD.c.messages + statement.excluded.messages}), rows)


async def _write_groups(session: AsyncSession, tally: _Tally) -> None:
    totals: dict[tuple[str, date], dict[str, int]] = {}
    for (chat_id, day, kind), n in tally.groups.items():
        row = totals.setdefault((chat_id, day), {"messages": 0, "customer_messages": 0,
                                                 "staff_messages": 0})
        row["messages"] += n
        row["customer_messages"] += n if kind == CUSTOMER else 0
        row["staff_messages"] += n if kind == STAFF else 0
    rows = [{"chat_id": c, "day": d, "speakers": 0, **counts} for (c, d), counts in totals.items()]
    statement = insert_for(session, GAD)
    excluded = statement.excluded
    await session.execute(statement.on_conflict_do_update(
        index_elements=["chat_id", "day"],
        set_={"messages": GAD.c.messages + excluded.messages,
              "customer_messages": GAD.c.customer_messages + excluded.customer_messages,
              "staff_messages": GAD.c.staff_messages + excluded.staff_messages}), rows)


async def _count_speakers(session: AsyncSession, touched: set[tuple[str, date]]) -> None:
    """`speakers` of each group-day the page touched, counted again from speaker_day (its
    unique index's prefix): a recall can take the day's only message of someone back."""
    speakers = (select(func.count()).where(
        SD.c.chat_id == GAD.c.chat_id, SD.c.day == GAD.c.day, SD.c.messages > 0,
        func.substr(SD.c.userid, 1, 2).in_(CUSTOMER_PREFIXES)).scalar_subquery())
    # By groups and days, not (group, day) pairs: SQLite scans the table for a row-value IN.
    # A pair the page did not touch is counted again too, to the same value.
    chats, days = sorted({c for c, _ in touched}), sorted({d for _, d in touched})
    await session.execute(update(GAD).where(GAD.c.chat_id.in_(chats), GAD.c.day.in_(days))
                          .values(speakers=speakers))


async def _write_people(session: AsyncSession, tally: _Tally) -> None:
    rows = [{"chat_id": c, "userid": u, "kind": p.kind, "first_at": p.first_at,
             "last_at": p.last_at, "messages": p.messages, "answers": 0}
            for (c, u), p in tally.people.items()]
    statement = insert_for(session, SP)
    excluded = statement.excluded
    # A recall never moves first_at/last_at back: the times say when someone was last seen
    # talking, and the recalled message was seen.
    await session.execute(statement.on_conflict_do_update(
        index_elements=["chat_id", "userid"],
        set_={"messages": SP.c.messages + excluded.messages,
              "first_at": _least(SP.c.first_at, excluded.first_at, session),
              "last_at": _greatest(SP.c.last_at, excluded.last_at, session)}), rows)


def _least(a: Any, b: Any, session: AsyncSession) -> Any:
    # SQLite's two-argument min() is PostgreSQL's least().
    return (func.min if _sqlite(session) else func.least)(a, b)


def _greatest(a: Any, b: Any, session: AsyncSession) -> Any:
    return (func.max if _sqlite(session) else func.greatest)(a, b)


def _sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"
