"""The read side of the activity rollups (app/archive/reports.py), on rollups written by the real
page steps (activity, then questions for the answers): a group's messages, distinct speaking
customers and staff messages over 7 and 30 days and day by day, a recall taken back; a member's
last message, 7/30-day counts and answers per group; an owner's latest WeCom figures; and every
statement of a page reading the rollup tables through their indexes, never archive_message.

`Talk` and `feed` are shared with the lifecycle, overview and console tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from app.archive import reports, store
from app.archive.activity import count_page
from app.archive.flows import QuestionSettings
from app.archive.models import ArchiveReader, OwnerGroupStat
from app.archive.questions import track_questions
from app.engine.config import SHANGHAI
from app.engine.db import Database
from app.engine.wecom.archive_events import RECALL, SEND, ArchiveMessage
from app.groups.models import CustomerGroup

NOW = datetime(2026, 12, 1, 20, 0, tzinfo=SHANGHAI)  # a Tuesday evening, Asia/Shanghai
ROLLUPS = ("group_activity_day", "speaker_day", "speaker", "owner_group_stat")


QUESTIONS = QuestionSettings(ask_words=["？", "?", "吗", "怎么", "有没有"])


class Talk:
    """Group messages as the archive gives them: seq and msgid in order, times before `now`."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now, self.seq = now, 0

    def say(self, chat_id: str, sender: str, days_ago: float = 0, said: str = "收到，谢谢",
            minutes: float = 0) -> ArchiveMessage:
        self.seq += 1
        at = self.now - timedelta(days=days_ago) + timedelta(minutes=minutes)
        return ArchiveMessage(self.seq, f"m{self.seq}", SEND, sender, chat_id,
                              at.astimezone(UTC), "text", said)

    def recall(self, message: ArchiveMessage) -> ArchiveMessage:
        self.seq += 1
        return ArchiveMessage(self.seq, f"m{self.seq}", RECALL, message.sender,
                              message.chat_id, message.msgtime + timedelta(minutes=1),
                              "revoke", None, message.msgid)


async def feed(db: Database, messages: Sequence[ArchiveMessage]) -> None:
    """One archive page as the reader stores it (its rows, the reader's own row: the archive is
    in use) and the page steps the rollups come from, in their order."""
    now = max(m.msgtime for m in messages)
    async with db.unit_of_work() as session:
        if await session.scalar(select(ArchiveReader.id)) is None:
            session.add(ArchiveReader(corp_id="wwtestcorp"))
        messages = await store.store_messages(session, messages)  # as the reader does
        await count_page(session, messages, now)
        await track_questions(session, messages, now, QUESTIONS, None)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


async def test_a_groups_figures_over_7_and_30_days(db: Database) -> None:
    async with db.unit_of_work() as session:
        session.add_all(CustomerGroup(chat_id=c, status="live") for c in ("wrA", "wrB", "wrNever"))
    talk = Talk()
    recalled = talk.say("wrA", "wmAnn", 0.1)
    await feed(db, [
        talk.say("wrA", "wmAnn", 0), talk.say("wrA", "wmAnn", 1), recalled,
        talk.say("wrA", "woBob", 6),  # the window's first day (Wednesday a week ago)
        talk.say("wrA", "wmCat", 7),  # the day before: in 30 days, not in 7
        talk.say("wrA", "wmOld", 40),  # in neither
        talk.say("wrA", "zhangsan", 2), talk.say("wrA", "zhangsan", 20),  # staff
        talk.say("wrA", "wbRobot", 1),  # a robot: a message, neither staff nor a speaker
        talk.say("wrB", "wmAnn", 3)])
    await feed(db, [talk.recall(recalled)])
    async with db.reader() as session:
        found = await reports.group_activity(session, ["wrA", "wrB", "wrNever"], NOW)
        days = await reports.group_days(session, "wrA", NOW, days=8)
        seen = await reports.seen(session, ["wrA", "wrB", "wrNever"])
    assert found["wrA"] == reports.GroupActivity(
        "wrA", messages_7d=5, speakers_7d=2, staff_messages_7d=1,
        messages_30d=7, speakers_30d=3, staff_messages_30d=2)
    assert (found["wrB"].messages_7d, found["wrB"].speakers_7d) == (1, 1)
    assert "wrNever" not in found and set(seen) == {"wrA", "wrB"}
    assert [d.day for d in days] == [date(2026, 11, 24) + timedelta(days=n) for n in range(8)]
    assert [d.messages for d in days] == [1, 1, 0, 0, 0, 1, 2, 1]  # the recall taken back
    assert (days[-1].speakers, days[-2].customer_messages, days[-3].staff_messages) == (1, 1, 1)


async def test_a_members_last_message_counts_and_answers_per_group(db: Database) -> None:
    talk = Talk()
    await feed(db, [
        talk.say("wrA", "wmAsk", 2, "请问有没有冰柜的货源？"),
        talk.say("wrA", "wmHelp", 2, "有的，我发你", minutes=5),  # an answer in time
        talk.say("wrA", "wmHelp", 10), talk.say("wrA", "wmHelp", 45),
        talk.say("wrB", "wmHelp", 0.5)])
    async with db.reader() as session:
        helper = await reports.member_activity(session, "wmHelp", NOW)
        asker = await reports.member_activity(session, "wmAsk", NOW)
        nobody = await reports.member_activity(session, "wmNobody", NOW)
    assert [(a.chat_id, a.messages_7d, a.messages_30d, a.messages, a.answers, a.answers_30d)
            for a in helper] == [("wrB", 1, 1, 1, 0, 0), ("wrA", 1, 2, 3, 1, 1)]
    assert helper[0].last_spoke == NOW - timedelta(days=0.5)
    assert helper[1].last_spoke == NOW - timedelta(days=2) + timedelta(minutes=5)
    assert [(a.chat_id, a.messages_7d, a.answers) for a in asker] == [("wrA", 1, 0)]
    assert nobody == []


async def test_an_owners_latest_figures(db: Database) -> None:
    async with db.unit_of_work() as session:
        for owner, day, messages in (("zhangsan", 29, 10), ("zhangsan", 30, 12),
                                     ("lisi", 28, 3)):
            session.add(OwnerGroupStat(owner=owner, day=date(2026, 11, day), chat_total=4,
                                       chat_has_msg=2, member_total=300, member_has_msg=20,
                                       msg_total=messages, new_member_cnt=1))
    async with db.reader() as session:
        found = await reports.owner_figures(session, ["zhangsan", "lisi", "wangwu"])
    assert {o: (f.day, f.msg_total) for o, f in found.items()} == {
        "zhangsan": (date(2026, 11, 30), 12), "lisi": (date(2026, 11, 28), 3)}


# --- cost: the indexes, never the messages ----------------------------------------------------


@contextmanager
def statements(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement run on `db` meanwhile, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        seen.append((statement, parameters))
    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def plans(db: Database, run: list[tuple[str, Any]]) -> list[str]:
    """SQLite's query plan lines of every SELECT run."""
    found = []
    async with db.reader() as session:
        conn = await session.connection()
        for statement, parameters in run:
            if statement.lstrip().upper().startswith("SELECT"):
                rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}",
                                                  tuple(parameters))
                found += [row[-1] for row in rows]
    return found


def full_scans(lines: list[str]) -> list[str]:
    """Plan lines that read a rollup table (or the messages) whole."""
    return [line for line in lines
            if line.startswith("SCAN") and any(t in line for t in (*ROLLUPS, "archive_message"))]


async def test_reports_read_the_rollups_through_their_indexes(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("the plans are SQLite's (PostgreSQL plans by its statistics)")
    async with db.unit_of_work() as session:
        session.add_all(CustomerGroup(chat_id=f"wr{n}", status="live") for n in range(40))
    talk = Talk()
    await feed(db, [talk.say(f"wr{n}", f"wm{n}{k}", n % 9) for n in range(40) for k in range(3)])
    with statements(db) as run:
        async with db.reader() as session:
            await reports.group_activity(session, [f"wr{n}" for n in range(20)], NOW)
            await reports.window_talk(session, [f"wr{n}" for n in range(20)], date(2026, 11, 20))
            await reports.seen(session, ["wr1", "wr2"])
            await reports.member_activity(session, "wm11", NOW)
            await reports.owner_figures(session, ["zhangsan"])
    lines = await plans(db, run)
    assert len(run) >= 6 and not any("archive_message" in s for s, _ in run)
    assert full_scans(lines) == [], lines
    # SQLite names the unique constraints' indexes sqlite_autoindex_<table>_1.
    for index in ("autoindex_group_activity_day_1", "autoindex_speaker_day_1",
                  "ix_speaker_day_userid_day", "ix_speaker_userid",
                  "autoindex_owner_group_stat_1"):
        assert any(index in line for line in lines), (index, lines)
