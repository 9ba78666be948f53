"""One kf reader per account at a time, news that arrives during a read read too, and a failed
read waiting before the next try."""

from __future__ import annotations

from datetime import timedelta

from app.engine import wakeups
from app.engine.db import Database, utcnow
from app.kf import store


async def test_one_reader_per_account_and_news_during_a_read_is_read_later(db_url: str) -> None:
    db = Database(db_url)
    now = utcnow()
    try:
        async with db.unit_of_work() as session:
            await store.note_news(session, "wk1", "TOKEN1", now)
            assert wakeups.noted(session, wakeups.KF_NEWS) is True
        async with db.unit_of_work() as session:
            first = await store.claim(session, "a/1", now, 60)
            assert first is not None and (first.open_kfid, first.token, first.news) == (
                "wk1", "TOKEN1", 1)
            assert await store.claim(session, "b/1", now, 60) is None  # leased: one reader
        async with db.unit_of_work() as session:
            await store.note_news(session, "wk1", "TOKEN2", now)  # news while reading
            assert await store.save_cursor(session, first, "CURSOR1", now, 60)
            assert not await store.save_cursor(session, store.Claimed(
                first.id, "wk1", None, None, None, 1, 0, "b/1"), "X", now, 60)  # not its lease
            assert await store.finish(session, first)
        async with db.unit_of_work() as session:
            again = await store.claim(session, "b/2", now, 60)
            assert again is not None and (again.cursor, again.token, again.news) == (
                "CURSOR1", "TOKEN2", 2)
            await store.failed(session, again, "errcode -1", now + timedelta(seconds=30))
        async with db.unit_of_work() as session:
            assert await store.claim(session, "c/1", now + timedelta(seconds=10), 60) is None
            later = await store.claim(session, "c/2", now + timedelta(seconds=31), 60)
            assert later is not None and later.failures == 1
    finally:
        await db.dispose()
