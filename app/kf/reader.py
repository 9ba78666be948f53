"""The kf reader: pulls what a kf account received with kf/sync_msg and stores each message in
the inbox, where the inbox worker feeds it through the same router as callbacks.

A kf_msg_or_event callback only says "account X has news" (with a token valid 10 minutes);
its handler records that, and the commit wakes this reader. One reader per account at a time
(a lease, across replicas). Each page's messages and the cursor after them are stored in one
transaction, so after a crash or a deploy nothing is read twice or skipped; a message read
twice anyway (a cursor WeCom refused, which sends reading back to the start) is dropped by
the inbox's dedupe key, built from its msgid. Customer messages also reopen their answer
window (48 h, 5 answers) in that transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.bot.router import IntakeRule, KfPageStep
from app.engine.config import Settings
from app.engine.db import Database, utcnow
from app.engine.inbox import store as inbox
from app.engine.liveness import worker_id
from app.engine.logs import get_logger
from app.engine.outbox import store as outbox
from app.engine.wake_loop import WakeLoop
from app.engine.wecom.api_kf import KfMessage, KfSyncMsg, KfSyncResult
from app.engine.wecom.client import WeComClient
from app.engine.wecom.errors import ApiError, InvalidRequest, WeComError
from app.engine.wecom.events import Event
from app.engine.wecom.kf_events import CUSTOMER
from app.engine.wecom.parsing import kf_event, stored
from app.kf import store

log = get_logger("sopbot.kf")
TOKEN_TTL = timedelta(minutes=9)  # WeCom: 10 minutes; a minute of margin
TOKEN_REJECTED = 95007
PAGE = 1000
RETRY_BASE_S, RETRY_MAX_S = 5.0, 300.0
MAX_IDLE_PAGES = 3  # empty pages with has_more=1 in a row before a read counts as failed


# What the router gives the reader (app/engine/bot/router.py): the message to store with an event
# (the kf welcome: its code lives 20 s), and steps run on each page before it is stored.


class KfReader(WakeLoop):
    def __init__(self, db: Database, wecom: WeComClient, settings: Settings,
                 on_stored: Callable[[], None], clock: Callable[[], datetime] = utcnow,
                 intake: IntakeRule[Event] | None = None,
                 page_steps: list[KfPageStep] | None = None
                 ) -> None:
        self.db, self.wecom, self.settings, self.clock = db, wecom, settings, clock
        self.on_stored = on_stored  # wakes the inbox worker
        self.intake = intake
        self.page_steps = page_steps or []
        self.owner = worker_id()
        self.lease_s = 4 * settings.wecom_timeout_s + 30
        # Stopping lets the page being read finish (its cursor and messages are stored
        # together); a read that does not finish in time is cancelled and its lease runs out.
        super().__init__("kf-reader", settings.inbox_sweep_s, self.lease_s, "kf_read_failed")
        self._claims = itertools.count(1)

    async def once(self) -> int:
        return await self.drain()

    async def drain(self) -> int:
        """Read every account with news; how many messages were stored."""
        count = 0
        while not self.stopping and (account := await self._claim()) is not None:
            count += await self.read(account)
        return count

    async def _claim(self) -> store.Claimed | None:
        async with self.db.unit_of_work() as session:
            lease = f"{self.owner}/{next(self._claims)}"
            return await store.claim(session, lease, self.clock(), self.lease_s)

    async def read(self, account: store.Claimed) -> int:
        """Page through the account's news; the number of messages stored. A page that moves
        nothing on (the same cursor, no messages) more than a few times in a row, or a second
        cursor WeCom refuses, ends the read as failed: it is tried again after a backoff."""
        cursor, token, count, stuck, reset = account.cursor, self._token(account), 0, 0, False
        while True:
            try:
                page = await self._page(account, cursor, token, may_reset=not reset)
            except _Retry as retry:
                reset = reset or retry.cursor is None and cursor is not None
                cursor, token = retry.cursor, retry.token
                continue
            except WeComError as exc:
                await self._failed(account, str(exc))
                return count
            if not await self._store(account, page):
                log.warning("kf_lease_lost", open_kfid=account.open_kfid)
                return count
            count += len(page.msg_list)
            moved = bool(page.msg_list) or (page.next_cursor or cursor) != cursor
            stuck = 0 if moved else stuck + 1
            cursor = page.next_cursor or cursor
            if page.has_more and stuck > MAX_IDLE_PAGES:
                await self._failed(account, f"{stuck} pages in a row brought nothing new")
                return count
            if not page.has_more or self.stopping:
                async with self.db.unit_of_work() as session:
                    await (store.finish(session, account) if not page.has_more
                           else store.release(session, account))
                return count

    def _token(self, account: store.Claimed) -> str | None:
        fresh = account.token_at is not None and self.clock() - account.token_at < TOKEN_TTL
        return account.token if fresh else None

    async def _page(self, account: store.Claimed, cursor: str | None, token: str | None,
                    *, may_reset: bool) -> KfSyncResult:
        call = KfSyncMsg(cursor=cursor, token=token, limit=PAGE, open_kfid=account.open_kfid)
        try:
            return await self.wecom.call(call)
        except ApiError as exc:
            if exc.errcode == TOKEN_REJECTED and token is not None:
                log.info("kf_token_rejected", open_kfid=account.open_kfid)
                raise _Retry(cursor, None) from exc  # read on without it (stricter limits)
            if isinstance(exc, InvalidRequest) and cursor is not None and may_reset:
                # Reading again from the start of WeCom's 3 days is safe: the inbox drops
                # every message it has by its msgid.
                log.error("kf_cursor_rejected", open_kfid=account.open_kfid, error=str(exc))
                raise _Retry(None, token) from exc
            raise

    async def _store(self, account: store.Claimed, page: KfSyncResult) -> bool:
        for step in self.page_steps:
            page = page.model_copy(update={"msg_list": await step(page.msg_list)})
        now = self.clock()
        async with self.db.unit_of_work() as session:
            if not await store.save_cursor(session, account, page.next_cursor or account.cursor,
                                           now, self.lease_s):
                return False
            events = [(kf_event(m), m) for m in page.msg_list]
            rows = [inbox.new_row(event, stored(m), f"kf-{account.id}") for event, m in events]
            if rows:
                await inbox.accept_many(session, rows)
            if self.intake is not None:
                intake = self.intake
                await outbox.enqueue_many(session, [
                    queued for event, _ in events if (queued := intake(event, now))])
            for message in page.msg_list:
                await open_window(session, message, now)
        if rows:
            self.on_stored()
            log.info("kf_messages_stored", open_kfid=account.open_kfid, count=len(rows))
        return True

    async def _failed(self, account: store.Claimed, error: str) -> None:
        wait = min(RETRY_BASE_S * 2 ** min(account.failures, 6), RETRY_MAX_S)
        async with self.db.unit_of_work() as session:
            await store.failed(session, account, error, self.clock() + timedelta(seconds=wait))
        log.warning("kf_read_failed", open_kfid=account.open_kfid, error=error, retry_s=wait)


async def open_window(session: AsyncSession, message: KfMessage, now: datetime) -> None:
    """A customer's message reopens their answer window (48 h, 5 answers), from its send time."""
    if message.origin == CUSTOMER and message.external_userid and message.open_kfid:
        at = datetime.fromtimestamp(message.send_time, now.tzinfo) if message.send_time else now
        await store.customer_wrote(session, message.open_kfid, message.external_userid, at)


class _Retry(Exception):
    def __init__(self, cursor: str | None, token: str | None) -> None:
        super().__init__("retry")
        self.cursor, self.token = cursor, token
