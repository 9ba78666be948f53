"""SQLite in the event loop's thread: a locked database is waited for without blocking the loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.engine import sqlite_inline
from app.engine.db import Database


async def make_table(db: Database) -> None:
    async with db.unit_of_work() as session:
        await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))


async def test_two_connections_in_one_loop_take_turns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    first, second = Database(url), Database(url)
    await make_table(first)
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold_the_write_lock() -> None:
        async with first.unit_of_work() as session:
            await session.execute(text("INSERT INTO t (v) VALUES ('first')"))
            holding.set()
            await release.wait()  # the transaction stays open across an await

    async def write_meanwhile() -> None:
        await holding.wait()
        async with second.unit_of_work() as session:
            await session.execute(text("INSERT INTO t (v) VALUES ('second')"))

    holder = asyncio.create_task(hold_the_write_lock())
    writer = asyncio.create_task(write_meanwhile())
    await asyncio.sleep(0.1)
    assert not writer.done()  # waiting for the lock, and the loop still runs (we are here)
    release.set()
    await asyncio.wait_for(asyncio.gather(holder, writer), 5)
    async with second.reader() as session:
        values = (await session.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all()
    assert values == ["first", "second"]
    await first.dispose()
    await second.dispose()


async def test_lock_held_past_the_busy_timeout_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_inline, "BUSY_TIMEOUT_S", 0.2)
    url = f"sqlite:///{tmp_path / 'y.db'}"
    first, second = Database(url), Database(url)
    await make_table(first)
    async with first.unit_of_work() as session:
        await session.execute(text("INSERT INTO t (v) VALUES ('x')"))
        with pytest.raises(OperationalError, match="database is locked"):
            async with second.unit_of_work() as other:
                await other.execute(text("INSERT INTO t (v) VALUES ('y')"))
    await first.dispose()
    await second.dispose()
