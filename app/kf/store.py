"""Reading kf accounts: news from callbacks, leases for one reader per account, the cursor kept
with each page's messages. Functions take a session and only flush."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningUpdate

from app.engine import wakeups
from app.engine.db import insert_for, rowcount
from app.kf.models import KfAccount, KfConversation

T = KfAccount.__table__.c
MAX_ERROR_CHARS = 2000



async def note_news(session: AsyncSession, open_kfid: str, token: str, now: datetime) -> None:
    """A kf_msg_or_event: the account has news, to be read with this token (valid 10 min)."""
    statement = insert_for(session, KfAccount).values(
        open_kfid=open_kfid, token=token, token_at=now, news=1, pulled=0, failures=0)
    await session.execute(statement.on_conflict_do_update(
        index_elements=["open_kfid"],
        set_={"token": token, "token_at": now, "news": KfAccount.news + 1}))
    wakeups.note(session, wakeups.KF_NEWS)


@dataclass(frozen=True)
class Claimed:
    id: int
    open_kfid: str
    cursor: str | None
    token: str | None
    token_at: datetime | None
    news: int
    failures: int  # reads that failed in a row
    lease: str


_PICK = (select(T.id).where(T.news > T.pulled,
                            or_(T.lease_until.is_(None), T.lease_until < bindparam("now")))
         .order_by(T.id).limit(1))
# The columns Claimed takes, in order (before its lease).
_ClaimRow = ReturningUpdate[int, str, str | None, str | None, datetime | None, int, int]
_CLAIM: _ClaimRow = (update(KfAccount.__table__)
                     .where(T.id.in_(_PICK.with_for_update(skip_locked=True)))
                     .values(lease_owner=bindparam("lease"), lease_until=bindparam("until"))
                     .returning(T.id, T.open_kfid, T.cursor, T.token, T.token_at, T.news,
                                T.failures))


async def claim(session: AsyncSession, lease: str, now: datetime,
                lease_s: float) -> Claimed | None:
    """Lease one account with unread news (and no reader, nor a wait after a failure)."""
    row = (await session.execute(_CLAIM, {"now": now, "lease": lease,
                                          "until": now + timedelta(seconds=lease_s)})).first()
    return None if row is None else Claimed(*row, lease=lease)


def _leased(claimed: Claimed) -> ColumnElement[bool]:
    return (T.id == claimed.id) & (T.lease_owner == claimed.lease)


async def save_cursor(session: AsyncSession, claimed: Claimed, cursor: str | None,
                      now: datetime, lease_s: float) -> bool:
    """Keep where reading stopped (with the page's messages, in the same transaction) and
    extend the lease; False if the lease was lost (another reader has the account now)."""
    result = await session.execute(update(KfAccount).where(_leased(claimed)).values(
        cursor=cursor, synced_at=now, failures=0, last_error=None,
        lease_until=now + timedelta(seconds=lease_s)))
    return rowcount(result) == 1


async def finish(session: AsyncSession, claimed: Claimed) -> bool:
    """Everything up to the claimed news is read; news that came meanwhile stays unread."""
    result = await session.execute(update(KfAccount).where(_leased(claimed)).values(
        pulled=claimed.news, lease_owner=None, lease_until=None))
    return rowcount(result) == 1


async def release(session: AsyncSession, claimed: Claimed) -> None:
    """Stopping mid-read: the next reader goes on from the stored cursor."""
    await session.execute(update(KfAccount).where(_leased(claimed)).values(
        lease_owner=None, lease_until=None))


async def failed(session: AsyncSession, claimed: Claimed, error: str, retry_at: datetime) -> None:
    """A read failed: try again at `retry_at` (no reader takes it before)."""
    await session.execute(update(KfAccount).where(_leased(claimed)).values(
        failures=KfAccount.failures + 1, last_error=error[:MAX_ERROR_CHARS], lease_owner=None,
        lease_until=retry_at))


async def customer_wrote(session: AsyncSession, open_kfid: str, external_userid: str,
                         at: datetime) -> None:
    """A customer's message opens a new answer window: 48 h, 5 answers."""
    statement = insert_for(session, KfConversation).values(
        open_kfid=open_kfid, external_userid=external_userid, last_customer_at=at, answers=0,
        misses=0, updated_at=at)
    await session.execute(statement.on_conflict_do_update(
        index_elements=["open_kfid", "external_userid"],
        set_={"last_customer_at": at, "answers": 0, "updated_at": at},
        # <=: WeCom's send_time has whole seconds, and each message within one second
        # opens its own budget of answers too.
        where=or_(KfConversation.last_customer_at.is_(None),
                  KfConversation.last_customer_at <= at)))
