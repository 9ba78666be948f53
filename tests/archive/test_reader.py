"""The chat archive reader on a real database, with records opened by the real child process
(the simulator's `plain` backend, which aborts on a malformed record as the SDK does): pages
stored once with their cursor, rollups counted, a poisoned record quarantined, a child killed
from outside costing nothing, a crash before the commit reading the page again, a recall taken
back out, and two readers never reading the same page."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive import activity
from app.archive.models import (
    ArchivedMessage,
    ArchiveQuarantine,
    GroupActivityDay,
    Speaker,
    SpeakerDay,
)
from app.archive.models import (
    ArchiveReader as ReaderRow,
)
from app.archive.reader import ArchiveReader
from app.archive.status import archive_status
from app.engine.db import Database
from app.engine.wecom.api_archive import ChatData
from app.engine.wecom.archive_child import ArchiveChild
from app.engine.wecom.archive_events import ArchiveMessage
from app.engine.wecom.archive_sdk import ArchiveRetryable
from app.engine.wecom.archive_source import SdkSource, SimulatorSource, raw
from tests.conftest import make_settings, rows_of

ROOM = "wrGroup0001"
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def message(n: int, sender: str = "wmCustomerA", text: str = "大家好", room: str = ROOM,
            at: datetime | None = None, **extra: Any) -> dict[str, Any]:
    data = {"msgid": f"msg{n}_external", "action": "send", "from": sender, "tolist": [],
            "roomid": room, "msgtime": int(((at or T0) + timedelta(minutes=n)).timestamp() * 1000),
            "msgtype": "text", "text": {"content": text}}
    return {**data, **extra}


class ListSource(SimulatorSource):
    """The simulator's source with its pages from a list instead of HTTP: the child and the
    opening are the real ones."""

    def __init__(self, records: list[ChatData]) -> None:
        self.records = records
        self.fetches: list[tuple[str, int, int]] = []  # (reader, after seq, records)
        self.reader = ""
        self.fail_fetch = 0
        self._child = ArchiveChild("corp", "", backend="plain")
        from app.engine.wecom.archive_source import _ChildOpener
        self._opener = _ChildOpener(self._child)

    async def fetch(self, seq: int, limit: int) -> list[ChatData]:
        if self.fail_fetch:
            self.fail_fetch -= 1
            raise ArchiveRetryable(10001, "network error")
        page = [r for r in self.records if r.seq > seq][:limit]
        self.fetches.append((self.reader, seq, len(page)))
        await asyncio.sleep(0)
        return page


def records(*messages: dict[str, Any], start: int = 1) -> list[ChatData]:
    return [ChatData(seq=start + i, msgid=m["msgid"], encrypt_chat_msg=base64.b64encode(
        json.dumps(m, ensure_ascii=False).encode()).decode()) for i, m in enumerate(messages)]


def poison(seq: int) -> ChatData:
    return ChatData(seq=seq, msgid=f"poison{seq}", encrypt_chat_msg="%%% not base64 %%%")


def reader_for(db: Database, source: ListSource, db_url: str, page: int = 3,
               steps: Sequence[Any] = (activity.count_page,)) -> ArchiveReader:
    settings = make_settings(db_url, archive_secret="s" * 20, archive_source="simulator")
    return ArchiveReader(db, source, settings, steps, page_size=page)


@pytest.fixture
async def db(db_url: str) -> Any:
    database = Database(db_url)
    yield database
    await database.dispose()


async def test_pages_are_stored_once_with_their_cursor_and_counted(db: Database,
                                                                   db_url: str) -> None:
    source = ListSource(records(
        message(1), message(2, "wmCustomerB", "有没有货？"), message(3, "staff01", "有的"),
        message(4), message(5, "wbRobot", "自动回复"), message(6, room="")))
    reader = reader_for(db, source, db_url)
    try:
        assert await reader.read() == 6
        assert await reader.read() == 0  # caught up: nothing new
        [row] = await rows_of(db, ReaderRow)
        assert row.seq == 6 and row.caught_up_at is not None and row.lease_owner is None
        stored = {m.msgid: m for m in await rows_of(db, ArchivedMessage)}
        assert len(stored) == 6
        assert stored["msg6_external"].text is None  # one to one: no text kept
        assert stored["msg3_external"].sender_kind == "staff"
        [day] = await rows_of(db, GroupActivityDay)
        assert (day.messages, day.customer_messages, day.staff_messages, day.speakers) == (
            5, 3, 1, 2)
        people = {s.userid: s.messages for s in await rows_of(db, Speaker)}
        assert people == {"wmCustomerA": 2, "wmCustomerB": 1, "staff01": 1, "wbRobot": 1}
        # Read from the start again (a cursor lost): the msgid index drops every message.
        async with db.unit_of_work() as session:
            await session.execute(update(ReaderRow).values(seq=0))
        await reader.read()
        assert len(await rows_of(db, ArchivedMessage)) == 6
        [day] = await rows_of(db, GroupActivityDay)
        assert day.messages == 5
    finally:
        await source.close()


async def test_a_poisoned_record_is_quarantined_and_reading_goes_on(db: Database,
                                                                    db_url: str) -> None:
    source = ListSource([*records(message(1), message(2)), poison(3),
                         *records(message(4), message(5), start=4)])
    reader = reader_for(db, source, db_url)
    try:
        await reader.read()
        [quarantined] = await rows_of(db, ArchiveQuarantine)
        assert quarantined.seq == 3 and quarantined.msgid == "poison3"
        assert "killed the decrypting process twice" in quarantined.reason
        assert json.loads(quarantined.record)["encrypt_chat_msg"] == "%%% not base64 %%%"
        assert {m.msgid for m in await rows_of(db, ArchivedMessage)} == {
            "msg1_external", "msg2_external", "msg4_external", "msg5_external"}
        assert source.child_starts == 3  # the first, its restart, and after the second death
        async with db.reader() as session:
            status = await archive_status(session, datetime.now(UTC))
        assert status is not None and status.quarantined == 1 and status.seq == 5
    finally:
        await source.close()


async def test_a_child_killed_from_outside_mid_page_costs_nothing(db: Database,
                                                                  db_url: str) -> None:
    source = ListSource(records(*(message(n) for n in range(1, 7))))
    reader = reader_for(db, source, db_url)

    async def kill_child(session: AsyncSession, messages: Sequence[ArchiveMessage],
                         now: datetime) -> None:
        pid = source.child.pid
        if pid is not None and messages[-1].seq == 3:  # after the first page: the next dies
            os.kill(pid, signal.SIGKILL)
    reader.steps.append(kill_child)
    try:
        await reader.read()
        assert sorted(m.seq for m in await rows_of(db, ArchivedMessage)) == [1, 2, 3, 4, 5, 6]
        assert await rows_of(db, ArchiveQuarantine) == []  # the record was not at fault
        assert source.child_starts == 2
    finally:
        await source.close()


async def test_a_crash_before_the_commit_reads_the_page_again(db: Database,
                                                               db_url: str) -> None:
    source = ListSource(records(*(message(n) for n in range(1, 5))))
    crashes = [1]

    async def crash_once(session: AsyncSession, messages: Sequence[ArchiveMessage],
                         now: datetime) -> None:
        if crashes and messages[0].seq == 4:
            crashes.pop()
            raise RuntimeError("the process died here")
    reader = reader_for(db, source, db_url, steps=(activity.count_page, crash_once))
    try:
        assert await reader.read() == 3  # the first page; the second failed and waits
        [row] = await rows_of(db, ReaderRow)
        assert row.seq == 3  # the first page committed, the second did not
        assert row.failures == 1 and "RuntimeError: the process died here" in (
            row.last_error or "")
        async with db.unit_of_work() as session:  # its lease runs out
            await session.execute(update(ReaderRow).values(lease_until=None))
        await reader.read()
        assert sorted(m.seq for m in await rows_of(db, ArchivedMessage)) == [1, 2, 3, 4]
        [day] = await rows_of(db, GroupActivityDay)
        assert day.messages == 4
    finally:
        await source.close()


async def test_a_recall_takes_the_message_out_of_text_and_counts(db: Database,
                                                                 db_url: str) -> None:
    recall = message(3, msgtype="revoke", action="recall",
                     revoke={"pre_msgid": "msg2_external"})
    recall["msgid"] = "recall3"
    source = ListSource(records(message(1), message(2, "wmCustomerB", "加我微信 abc123"),
                                recall))
    reader = reader_for(db, source, db_url, page=2)  # the recall comes a page later
    try:
        await reader.read()
        stored = {m.msgid: m for m in await rows_of(db, ArchivedMessage)}
        assert stored["msg2_external"].recalled and stored["msg2_external"].text is None
        [day] = await rows_of(db, GroupActivityDay)
        assert (day.messages, day.customer_messages, day.speakers) == (1, 1, 1)
        b = [d for d in await rows_of(db, SpeakerDay) if d.userid == "wmCustomerB"]
        assert [d.messages for d in b] == [0]
    finally:
        await source.close()


async def test_a_failed_fetch_waits_and_keeps_the_cursor(db: Database, db_url: str) -> None:
    source = ListSource(records(message(1)))
    source.fail_fetch = 1
    reader = reader_for(db, source, db_url)
    try:
        assert await reader.read() == 0
        [row] = await rows_of(db, ReaderRow)
        assert row.failures == 1 and "10001" in (row.last_error or "") and row.seq == 0
        assert row.lease_until is not None  # nobody reads before the backoff ends
        assert await reader.read() == 0
        async with db.unit_of_work() as session:
            await session.execute(update(ReaderRow).values(lease_until=None))
        assert await reader.read() == 1
    finally:
        await source.close()


async def test_two_readers_never_read_the_same_page(db: Database, db_url: str) -> None:
    source = ListSource(records(*(message(n, f"wmC{n % 7}") for n in range(1, 41))))
    first = reader_for(db, source, db_url, page=4)
    second = reader_for(db, source, db_url, page=4)
    second.owner = "other-replica"
    try:
        async def read_as(name: str, reader: ArchiveReader) -> None:
            for _ in range(20):
                source.reader = name
                await reader.read()
                await asyncio.sleep(0)
        await asyncio.gather(read_as("a", first), read_as("b", second))
        assert sorted(m.seq for m in await rows_of(db, ArchivedMessage)) == list(range(1, 41))
        pages = [(seq, n) for _, seq, n in source.fetches if n]
        assert len(pages) == len({seq for seq, _ in pages}) == 10  # each page read once
        [day] = await rows_of(db, GroupActivityDay)
        assert day.messages == 40
    finally:
        await source.close()


async def test_a_record_without_its_private_key_is_refused_without_the_sdk() -> None:
    source = SdkSource("corp", "secret", keys={})
    record = ChatData(seq=7, msgid="m7", publickey_ver=2, encrypt_random_key="AAAA",
                      encrypt_chat_msg="AAAA")
    [refused] = await source.open([record])
    assert refused.reason.startswith("no private key of publickey_ver 2")  # type: ignore[union-attr]
    assert source.child_starts == 0  # nothing reached the native library
    await source.close()


async def test_lag_is_measured_from_the_last_read_to_the_end(db: Database) -> None:
    now = datetime.now(UTC)
    async with db.unit_of_work() as session:
        session.add(ReaderRow(corp_id="c", seq=9, news=0, pulled=0, failures=0, gaps=0,
                              caught_up_at=now - timedelta(hours=13)))
    async with db.reader() as session:
        status = await archive_status(session, now)
        assert await activity.archive_in_use(session)
    assert status is not None and status.lagging(12) and not status.lagging(14)
    async with db.reader() as session:
        assert (await session.scalar(select(ReaderRow.seq))) == 9


async def test_replay_stores_what_opens_now_and_keeps_what_does_not(db: Database,
                                                                   db_url: str) -> None:
    [good] = records(message(8, "wmLate", "补一条消息"), start=8)
    async with db.unit_of_work() as session:  # refused before its key was configured
        session.add(ArchiveQuarantine(seq=8, msgid=good.msgid, publickey_ver=3,
                                      reason="no private key of publickey_ver 3",
                                      record=raw(good)))
        session.add(ArchiveQuarantine(seq=9, msgid="poison9", reason="killed", record=raw(
            poison(9))))
    source = ListSource([])
    reader = reader_for(db, source, db_url)
    try:
        assert await reader.replay() == (1, 1)
        [stored] = await rows_of(db, ArchivedMessage)
        assert stored.msgid == good.msgid and stored.sender == "wmLate"
        assert {p.userid for p in await rows_of(db, Speaker)} == {"wmLate"}  # steps ran
        left = {q.seq: q for q in await rows_of(db, ArchiveQuarantine)}
        assert left[8].replayed_at is not None and left[9].replayed_at is None
        assert "killed the decrypting process twice" in left[9].reason
        assert await reader.replay() == (0, 1)  # replaying again stores nothing twice
        assert len(await rows_of(db, ArchivedMessage)) == 1
    finally:
        await source.close()


def test_the_status_command_names_lag_and_quarantine(db_url: str, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from app.faces.cli.main import cli

    async def seed() -> None:
        database = Database(db_url)
        async with database.unit_of_work() as session:
            session.add(ReaderRow(corp_id="c", seq=41, news=0, pulled=0, failures=2, gaps=1,
                                  last_error="chat archive SDK: network error",
                                  caught_up_at=datetime.now(UTC) - timedelta(hours=20)))
            session.add(ArchiveQuarantine(seq=40, msgid="bad40", reason="killed", record="{}"))
        await database.dispose()
    asyncio.run(seed())
    result = CliRunner().invoke(cli, ["archive", "status"],
                                env={"SOPBOT_DATABASE_URL": db_url, **_service_env()})
    assert result.exit_code == 0, result.output
    assert "seq 41, lag 20.0 h (over SOPBOT_ARCHIVE_MAX_LAG_H), 1 seq(s) missing, " \
           "1 quarantined, 2 failed read(s) in a row" in result.output
    assert "quarantined seq 40 bad40" in result.output


def _service_env() -> dict[str, str]:
    settings = make_settings("sqlite:///x.db")
    return {"WECOM_CORP_ID": settings.corp_id,
            "WECOM_CALLBACK_TOKEN": settings.callback_token.get_secret_value(),
            "WECOM_CALLBACK_AES_KEY": settings.callback_aes_key.get_secret_value(),
            "SOPBOT_SECRET_KEY": settings.secret_key.get_secret_value()}


async def test_operators_are_told_once_about_a_quarantined_record(db: Database,
                                                                  db_url: str) -> None:
    from dataclasses import replace as with_

    from app.engine.bot.env import Env
    from app.engine.outbox.models import OutboxMessage
    from app.flows import load_flows
    from handlers.group_talk import tell_quarantined

    source = ListSource([*records(message(1)), poison(2)])
    reader = reader_for(db, source, db_url)
    try:
        await reader.read()
    finally:
        await source.close()
    env = Env(reader.settings, load_flows(reader.settings.flows_path), db)
    await tell_quarantined(env)
    await tell_quarantined(env)  # the next minute: nothing new
    [alert] = [r for r in await rows_of(db, OutboxMessage) if r.kind == "archive_alert"]
    assert alert.idempotency_key.startswith("archive-quarantine:")  # one per hour at most
    body = json.loads(alert.request)
    assert body["touser"] == "op_alice" and "1 条存档记录无法解开（第一条：第 2 条）" in body[
        "text"]["content"]
    no_texts = with_(env, flows=with_(env.flows, group_rules=env.flows.group_rules.model_copy(
        update={"archive": None})))
    await tell_quarantined(no_texts)  # a corp without the text: logged only
    assert len([r for r in await rows_of(db, OutboxMessage) if r.kind == "archive_alert"]) == 1


async def test_a_record_with_an_impossible_time_is_quarantined_not_a_jam(
        db: Database, db_url: str) -> None:
    source = ListSource(records(message(1), message(2, msgtime=10**20), message(3)))
    reader = reader_for(db, source, db_url)
    try:
        assert await reader.read() == 2
        [quarantined] = await rows_of(db, ArchiveQuarantine)
        assert quarantined.seq == 2 and "not an archive message" in quarantined.reason
        [row] = await rows_of(db, ReaderRow)
        assert row.seq == 3 and row.failures == 0
    finally:
        await source.close()


async def test_a_second_recall_of_a_message_takes_nothing_more_back(db: Database,
                                                                    db_url: str) -> None:
    def recall(n: int) -> dict[str, Any]:
        made = message(n, msgtype="revoke", action="recall",
                       revoke={"pre_msgid": "msg1_external"})
        return {**made, "msgid": f"recall{n}"}
    source = ListSource(records(message(1), message(2), recall(3), recall(4)))
    reader = reader_for(db, source, db_url, page=3)  # the second recall a page later
    try:
        await reader.read()
        [day] = await rows_of(db, GroupActivityDay)
        assert day.messages == 1
        assert {s.userid: s.messages for s in await rows_of(db, Speaker)} == {"wmCustomerA": 1}
    finally:
        await source.close()


async def test_a_reader_that_never_caught_up_lags_from_its_start(db: Database) -> None:
    now = datetime.now(UTC)
    async with db.unit_of_work() as session:
        session.add(ReaderRow(corp_id="c", seq=0, news=0, pulled=0, failures=3, gaps=0,
                              created_at=now - timedelta(hours=30)))
    async with db.reader() as session:
        status = await archive_status(session, now)
    assert status is not None and status.lagging(12)  # a first backlog jammed for 30 h


async def test_text_is_forgotten_after_the_retention_and_rollups_stay(db: Database,
                                                                      db_url: str) -> None:
    from app.archive import store
    from app.archive.models import GroupQuestion
    from app.archive.questions import track_questions
    from app.flows import load_flows

    old = datetime.now(UTC) - timedelta(days=40)
    source = ListSource([*records(message(1, at=old, text="周末发货吗？"),
                                  message(2, at=datetime.now(UTC) - timedelta(days=1))),
                         poison(3)])
    questions = load_flows(make_settings(db_url).flows_path).group_rules.questions

    async def ask(session: AsyncSession, page: Sequence[ArchiveMessage], now: datetime) -> None:
        await track_questions(session, page, now, questions, None)
    reader = reader_for(db, source, db_url, steps=(activity.count_page, ask))
    try:
        await reader.read()
    finally:
        await source.close()
    async with db.unit_of_work() as session:
        await session.execute(update(ArchiveQuarantine).values(created_at=old))
        await store.purge_text(session, datetime.now(UTC) - timedelta(days=30))
    texts = {m.seq: m.text for m in await rows_of(db, ArchivedMessage)}
    assert texts == {1: None, 2: "大家好"}
    assert await rows_of(db, GroupQuestion) == []  # its normalised text was the member's words
    [quarantined] = await rows_of(db, ArchiveQuarantine)
    assert quarantined.record == ""
    assert sum(d.messages for d in await rows_of(db, GroupActivityDay)) == 2  # rollups stay
