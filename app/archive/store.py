"""The archive reader's state: news from msgaudit_notify, the lease that makes one reader per
corp at a time across replicas, the seq cursor saved with each page's messages, and the
quarantine. Functions take a session and only flush."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.models import ArchivedMessage, ArchiveQuarantine, ArchiveReader, GroupQuestion
from app.engine import wakeups
from app.engine.db import insert_for, rowcount, utcnow
from app.engine.wecom.archive_events import RECALL, ArchiveMessage

T = ArchiveReader.__table__.c
MAX_ERROR_CHARS = 2000


async def ensure(session: AsyncSession, corp_id: str, now: datetime) -> None:
    """The corp's reader row (the archive is in use from now on)."""
    await session.execute(insert_for(session, ArchiveReader).values(
        corp_id=corp_id, seq=0, news=0, pulled=0, failures=0, gaps=0, created_at=now)
        .on_conflict_do_nothing(index_elements=["corp_id"]))


async def note_news(session: AsyncSession, corp_id: str) -> None:
    """A msgaudit_notify: there is something to read."""
    statement = insert_for(session, ArchiveReader).values(
        corp_id=corp_id, seq=0, news=1, pulled=0, failures=0, gaps=0, created_at=utcnow())
    await session.execute(statement.on_conflict_do_update(
        index_elements=["corp_id"], set_={"news": ArchiveReader.news + 1}))
    wakeups.note(session, wakeups.ARCHIVE_NEWS)


@dataclass(frozen=True)
class Claimed:
    id: int
    seq: int
    news: int
    failures: int
    lease: str


_CLAIM = (update(ArchiveReader.__table__)
          .where(T.id.in_(select(T.id).where(
              T.corp_id == bindparam("corp"),
              or_(T.lease_until.is_(None), T.lease_until < bindparam("now")))
              .with_for_update(skip_locked=True)))
          .values(lease_owner=bindparam("lease"), lease_until=bindparam("until"))
          .returning(T.id, T.seq, T.news, T.failures))


async def claim(session: AsyncSession, corp_id: str, lease: str, now: datetime,
                lease_s: float) -> Claimed | None:
    """Lease the corp's reader unless another holds it (or waits out a failure)."""
    row = (await session.execute(_CLAIM, {"corp": corp_id, "now": now, "lease": lease,
                                          "until": now + timedelta(seconds=lease_s)})).first()
    if row is None:
        return None
    id_, seq, news, failures = row
    return Claimed(id_, seq, news, failures, lease)


def _leased(claimed: Claimed) -> ColumnElement[bool]:
    return (T.id == claimed.id) & (T.lease_owner == claimed.lease)


async def save_cursor(session: AsyncSession, claimed: Claimed, seq: int, now: datetime,
                      lease_s: float, last_msgtime: datetime | None, gaps: int) -> bool:
    """Keep the page's last seq (with its messages, in this transaction) and extend the lease;
    False when the lease was lost (another reader has the corp now)."""
    values: dict[str, object] = {
        "seq": seq, "synced_at": now, "failures": 0, "last_error": None,
        "lease_until": now + timedelta(seconds=lease_s), "gaps": ArchiveReader.gaps + gaps}
    if last_msgtime is not None:
        values["last_msgtime"] = last_msgtime
    result = await session.execute(update(ArchiveReader).where(_leased(claimed))
                                   .where(T.seq == bindparam("expected", claimed.seq))
                                   .values(values), {"expected": claimed.seq})
    return rowcount(result) == 1


async def extend(session: AsyncSession, claimed: Claimed, now: datetime, lease_s: float) -> bool:
    """Keep the lease a while longer; False when another reader has it now."""
    result = await session.execute(update(ArchiveReader).where(_leased(claimed)).values(
        lease_until=now + timedelta(seconds=lease_s)))
    return rowcount(result) == 1


async def finish(session: AsyncSession, claimed: Claimed, now: datetime) -> None:
    """Read to the end: caught up now; news that came meanwhile stays unread."""
    await session.execute(update(ArchiveReader).where(_leased(claimed)).values(
        pulled=claimed.news, caught_up_at=now, lease_owner=None, lease_until=None))


async def release(session: AsyncSession, claimed: Claimed) -> None:
    await session.execute(update(ArchiveReader).where(_leased(claimed)).values(
        lease_owner=None, lease_until=None))


async def failed(session: AsyncSession, claimed: Claimed, error: str,
                 retry_at: datetime) -> None:
    await session.execute(update(ArchiveReader).where(_leased(claimed)).values(
        failures=ArchiveReader.failures + 1, last_error=error[:MAX_ERROR_CHARS],
        lease_owner=None, lease_until=retry_at))


async def store_messages(session: AsyncSession,
                         messages: Sequence[ArchiveMessage]) -> list[ArchiveMessage]:
    """Store the messages sopbot does not have yet (by msgid) and apply their recalls; the new
    ones, in seq order, without the recalls that changed nothing (a second recall of a message,
    or of one sopbot never had): every step takes a recalled message back once. Text is kept
    for group messages only: sopbot reads groups, and a person's one-to-one chats are not its
    business."""
    if not messages:
        return []
    have = set(await session.scalars(select(ArchivedMessage.msgid).where(
        ArchivedMessage.msgid.in_([m.msgid for m in messages]))))
    fresh, seen = [], set(have)
    for message in sorted(messages, key=lambda m: m.seq):
        if message.msgid not in seen:
            seen.add(message.msgid)
            fresh.append(message)
    if fresh:
        await session.execute(insert_for(session, ArchivedMessage.__table__), [{
            "msgid": m.msgid, "seq": m.seq, "chat_id": m.chat_id, "sender": m.sender,
            "sender_kind": m.sender_kind, "msgtime": m.msgtime, "msgtype": m.msgtype,
            "text": m.text if m.chat_id else None, "recalled": False} for m in fresh])
    recalled = [m.recalled_msgid for m in fresh if m.action == RECALL and m.recalled_msgid]
    taken: set[str] = set()
    if recalled:
        taken = set((await session.execute(update(ArchivedMessage).where(
            ArchivedMessage.msgid.in_(recalled), ArchivedMessage.recalled.is_(False))
            .values(recalled=True, text=None).returning(ArchivedMessage.msgid))).scalars())
    return [m for m in fresh if m.action != RECALL or m.recalled_msgid in taken]


async def quarantine(session: AsyncSession, seq: int, msgid: str, publickey_ver: int,
                     reason: str, record: str, now: datetime) -> None:
    await session.execute(insert_for(session, ArchiveQuarantine).values(
        seq=seq, msgid=msgid[:128], publickey_ver=publickey_ver, reason=reason[:255],
        record=record, created_at=now).on_conflict_do_nothing(index_elements=["msgid"]))


async def purge_text(session: AsyncSession, before: datetime) -> int:
    """Forget what members wrote, older than the retention: message text (the rows stay for
    dedupe and the rollups), questions (their normalised text), and quarantined records'
    ciphertext (sopbot holds the keys that could open it; past retention it is not replayed)."""
    result = await session.execute(update(ArchivedMessage).where(
        ArchivedMessage.msgtime < before, ArchivedMessage.text.is_not(None)).values(text=None))
    await session.execute(delete(GroupQuestion).where(GroupQuestion.asked_at < before))
    await session.execute(update(ArchiveQuarantine).where(
        ArchiveQuarantine.created_at < before, ArchiveQuarantine.record != "").values(record=""))
    return rowcount(result)
