"""The chat archive reader: pages of records after the stored seq, opened in the SDK's child
process, stored with the cursor in one transaction, and handed to the behaviours' archive page
steps (rollups, questions, newcomers, group rules) in that same transaction.

Woken by msgaudit_notify (a callback recorded by handlers/group_talk.py) and by a sweep every
SOPBOT_ARCHIVE_SWEEP_S. One reader per corp at a time (a lease, across replicas). A crash
anywhere before the commit leaves the cursor where it was: the page is read again, and the
msgid index drops what was stored. A record that cannot be opened (it killed the child twice,
DecryptData refused it, no private key of its publickey_ver, not a message) is quarantined
raw with its seq and an alert, and the reader goes on: WeCom keeps archive data for days
only, so a stuck reader would lose everything after it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.archive import store
from app.archive.models import ArchiveQuarantine
from app.engine.bot.router import ArchivePageStep
from app.engine.config import Settings
from app.engine.db import Database, utcnow
from app.engine.liveness import worker_id
from app.engine.logs import get_logger
from app.engine.wake_loop import WakeLoop
from app.engine.wecom.api_archive import PAGE_MAX, ChatData
from app.engine.wecom.archive_events import ArchiveMessage, MalformedMessage, parse_message
from app.engine.wecom.archive_sdk import ArchiveError
from app.engine.wecom.archive_source import ArchiveSource, Opened, Unopened, raw
from app.engine.wecom.errors import WeComError

log = get_logger("sopbot.archive")
RETRY_BASE_S, RETRY_MAX_S = 5.0, 300.0


@dataclass
class ReadStats:
    pages: int = 0
    stored: int = 0
    quarantined: int = 0


class ArchiveReader(WakeLoop):
    def __init__(self, db: Database, source: ArchiveSource, settings: Settings,
                 steps: Sequence[ArchivePageStep] = (), clock: Callable[[], datetime] = utcnow,
                 page_size: int = PAGE_MAX) -> None:
        self.db, self.source, self.settings, self.clock = db, source, settings, clock
        self.steps = list(steps)
        self.page_size = page_size
        self.corp_id = settings.corp_id
        self.owner = worker_id()
        self.lease_s = 4 * settings.wecom_timeout_s + 60
        # Stopping lets the page in hand commit; a read that does not end in time is cancelled
        # (its lease runs out and the page is read again).
        super().__init__("archive-reader", settings.archive_sweep_s, self.lease_s,
                         "archive_read_failed")
        self.stats = ReadStats()
        self._claims = itertools.count(1)

    async def once(self) -> int:
        return await self.read()

    async def stop(self) -> None:
        await super().stop()
        await self.source.close()

    async def read(self) -> int:
        """Read to the end if no other reader holds the corp; messages stored."""
        async with self.db.unit_of_work() as session:
            await store.ensure(session, self.corp_id, self.clock())
        async with self.db.unit_of_work() as session:
            lease = f"{self.owner}/{next(self._claims)}"
            claimed = await store.claim(session, self.corp_id, lease, self.clock(),
                                        self.lease_s)
        if claimed is None:
            return 0
        count = 0
        while True:
            try:
                records = await self.source.fetch(claimed.seq, self.page_size)
                # Opening may take a while (a hung record costs the child's timeout twice).
                if records and not await self._extend(claimed):
                    return count
                opened = await self.source.open(records) if records else []
                saved = await self._store(claimed, records, opened)
            except (ArchiveError, WeComError) as exc:
                await self._failed(claimed, str(exc))
                return count
            except Exception as exc:  # a bug or a page WeCom garbled: wait, count, show it
                log.exception("archive_page_failed", after=claimed.seq)
                await self._failed(claimed, f"page after seq {claimed.seq}: "
                                            f"{type(exc).__name__}: {exc}")
                return count
            if saved is None:
                log.warning("archive_lease_lost", seq=claimed.seq)
                return count
            claimed, stored = saved
            count += stored
            if len(records) < self.page_size or self.stopping:
                async with self.db.unit_of_work() as session:
                    await (store.finish(session, claimed, self.clock())
                           if len(records) < self.page_size else store.release(session, claimed))
                return count

    async def _store(self, claimed: store.Claimed, records: list[ChatData],
                     opened: list[Opened | Unopened]) -> tuple[store.Claimed, int] | None:
        """One transaction: the page's messages, their steps, its quarantine, and the cursor."""
        now = self.clock()
        messages, bad = _messages(opened)
        last = max((r.seq for r in records), default=claimed.seq)
        gaps = _gaps(claimed.seq, [r.seq for r in records])
        async with self.db.unit_of_work() as session:
            if not await store.save_cursor(session, claimed, last, now, self.lease_s,
                                           max((m.msgtime for m in messages), default=None),
                                           gaps):
                return None
            fresh = await store.store_messages(session, messages)
            grouped = [m for m in fresh if m.in_group]
            for step in self.steps if grouped else ():
                await step(session, grouped, now)
            for record, reason in bad:
                await store.quarantine(session, record.seq, record.msgid, record.publickey_ver,
                                       reason, raw(record), now)
        for record, reason in bad:
            log.error("archive_record_quarantined", seq=record.seq, msgid=record.msgid,
                      reason=reason)
        if gaps:
            log.warning("archive_seq_gap", after=claimed.seq, missing=gaps)
        self.stats.pages += 1
        self.stats.stored += len(fresh)
        self.stats.quarantined += len(bad)
        if fresh:
            log.info("archive_page_stored", seq=last, stored=len(fresh))
        return store.Claimed(claimed.id, last, claimed.news, 0, claimed.lease), len(fresh)

    async def replay(self) -> tuple[int, int]:
        """Open the quarantined records again (after a private key was added, say): those that
        open now are stored and handed to the steps like any page; (replayed, still refused)."""
        async with self.db.reader() as session:
            waiting = list(await session.scalars(select(ArchiveQuarantine).where(
                ArchiveQuarantine.replayed_at.is_(None)).order_by(ArchiveQuarantine.seq)))
        waiting = [row for row in waiting if row.record]  # past retention: nothing to open
        records = [ChatData.model_validate(json.loads(row.record)) for row in waiting]
        opened = await self.source.open(records) if records else []
        messages, bad = _messages(opened)
        refused = {record.seq: reason for record, reason in bad}
        now = self.clock()
        async with self.db.unit_of_work() as session:
            fresh = await store.store_messages(session, messages)
            grouped = [m for m in fresh if m.in_group]
            for step in self.steps if grouped else ():
                await step(session, grouped, now)
            for row in waiting:
                await session.execute(update(ArchiveQuarantine).where(
                    ArchiveQuarantine.id == row.id).values(
                    {"reason": refused[row.seq][:255]} if row.seq in refused
                    else {"replayed_at": now}))
        log.info("archive_replayed", replayed=len(waiting) - len(refused), refused=len(refused))
        return len(waiting) - len(refused), len(refused)

    async def _extend(self, claimed: store.Claimed) -> bool:
        async with self.db.unit_of_work() as session:
            kept = await store.extend(session, claimed, self.clock(), self.lease_s)
        if not kept:
            log.warning("archive_lease_lost", seq=claimed.seq)
        return kept

    async def _failed(self, claimed: store.Claimed, error: str) -> None:
        wait = min(RETRY_BASE_S * 2 ** min(claimed.failures, 6), RETRY_MAX_S)
        async with self.db.unit_of_work() as session:
            await store.failed(session, claimed, error,
                               self.clock() + timedelta(seconds=wait))
        log.warning("archive_read_failed", error=error, retry_s=wait)


def _messages(opened: list[Opened | Unopened]
              ) -> tuple[list[ArchiveMessage], list[tuple[ChatData, str]]]:
    messages, bad = [], []
    for item in opened:
        if isinstance(item, Unopened):
            bad.append((item.record, item.reason))
            continue
        try:
            messages.append(parse_message(item.record.seq, item.data))
        except (MalformedMessage, ValueError, TypeError, OverflowError, OSError) as exc:
            # A time out of range, a field of the wrong type: this record, not the page.
            bad.append((item.record, f"not an archive message: {type(exc).__name__}: {exc}"))
    return messages, bad


def _gaps(after: int, seqs: list[int]) -> int:
    """Seqs missing between the cursor and the page, and inside it (WeCom numbers a corp's
    records one by one; a gap is data sopbot will never see)."""
    if not seqs:
        return 0
    ordered = sorted(seqs)
    return (ordered[0] - after - 1 if after else 0) + sum(
        b - a - 1 for a, b in itertools.pairwise(ordered) if b > a + 1)
