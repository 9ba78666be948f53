"""Engine, session factory, declarative Base and the unit of work.

One code path for both databases: SQLAlchemy's async engine over SQLite (the embedded default,
through the aiosqlite dialect with the inline driver of app/engine/sqlite_inline.py) or psycopg 3
(PostgreSQL). Runtime only `flush()`; `unit_of_work()` commits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, cast

from sqlalchemy import BigInteger, CursorResult, DateTime, Integer, Result, Table, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool
from sqlalchemy.types import TypeDecorator

from app.engine import sqlite_inline

READ_ONLY = "sopbot_read_only"


class _Clock:
    """This process's clock: the wall clock, unless `sopbot demo` moved it to play a week that
    has passed (every timestamp sopbot writes comes from `utcnow`)."""

    offset = timedelta(0)


def utcnow() -> datetime:
    return datetime.now(UTC) + _Clock.offset


def set_clock(at: datetime | None) -> None:
    """Make `utcnow` read `at` from now on, ticking (None: the wall clock again). Only the demo
    calls it, before its service starts and then forward only, between units of work: a jump
    back would make a live lease look longer and a pending retry later."""
    _Clock.offset = timedelta(0) if at is None else at - datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    # Every model maps a Table (declarative types it as any FromClause): Core statements on it.
    __table__: ClassVar[Table]


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched. The session types what it executes as any Result;
    a DML statement's is a CursorResult, which has the count."""
    return cast(CursorResult[Any], result).rowcount


def id_column() -> Mapped[int]:
    """An autoincrement primary key: BIGINT on PostgreSQL, INTEGER (the rowid) on SQLite."""
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                         autoincrement=True)


def async_url(url: str) -> str:
    """The driver-qualified URL the async engine needs, from the URL an operator writes."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The URL Alembic (synchronous) uses for the same database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def insert_for(session: AsyncSession, target: Any) -> Any:
    """INSERT for the session's dialect, the one that offers ON CONFLICT (PostgreSQL's and
    SQLite's have the same methods)."""
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(target)


# The first key of every lock xact_lock takes. Two-key advisory locks never meet one-key locks
# (the scheduler's lead), whatever the key text: a login's userid, which anyone can choose,
# hashes into the second key only.
XACT_NAMESPACE = 0x534F_584C  # "SOXL"


async def xact_lock(session: AsyncSession, *keys: str) -> None:
    """Hold `keys` until the session's transaction ends, against every process on the database:
    PostgreSQL advisory locks, taken in sorted order (two callers cannot deadlock on them).
    SQLite needs none: a writing transaction holds the whole database (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        await session.execute(text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:key))"),
                              {"namespace": XACT_NAMESPACE, "key": key})


# A connection that holds a session-level lock notices a dead network peer within about a
# minute (a process killed outright closes its sockets at once).
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 20, "keepalives_interval": 10,
             "keepalives_count": 3}


def lock_engine(url: str) -> AsyncEngine:
    """An engine for connections that hold session-level locks (the scheduler's lead, a
    process's liveness): without a pool, so closing the connection ends the session and the
    lock, and only these connections get the keepalive settings."""
    return create_async_engine(async_url(url), poolclass=NullPool, connect_args=KEEPALIVE)


async def end_session(conn: AsyncConnection) -> None:
    """Close a lock's connection, ending its session (and its locks); a broken one is dropped."""
    try:
        await conn.close()
    except Exception:
        await conn.invalidate()


def safe_url(url: str) -> str:
    """The URL with its password hidden, for logs and errors."""
    return make_url(url).render_as_string(hide_password=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    # The driver's implicit BEGIN is deferred; a deferred transaction that reads and then
    # writes fails with SQLITE_BUSY instead of waiting. Emit BEGIN IMMEDIATE ourselves so a
    # writer takes the lock up front (only another process, e.g. an admin command, can hold it:
    # this one has a single connection). Read-only sessions (Database.reader) use plain BEGIN.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # busy_timeout=0: a locked database is waited for without blocking the event loop
        # (sqlite_inline retries asynchronously).
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=0",
                       "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class Database:
    """The engine and session factory of one process."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = is_sqlite(url)
        options: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            # One writer at a time is all SQLite allows; with one connection, waiting happens
            # in asyncio's fair queue instead of in SQLite's busy handler, which sleeps and
            # retries and so makes latency jump under load. The connection runs in the event
            # loop's thread (app/engine/sqlite_inline.py), not on aiosqlite's helper thread.
            path = make_url(url).database or ":memory:"
            options.update(poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0,
                           pool_timeout=60, async_creator=sqlite_inline.creator(path))
        else:
            options.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
        self.engine = create_async_engine(async_url(url), **options)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._readers = async_sessionmaker(self.engine.execution_options(**{READ_ONLY: True}),
                                           expire_on_commit=False)
        # Run after a unit of work commits, with its session.info: how a service that wrote
        # something (e.g. an outbox row) tells a background loop to look now, and only once
        # the row is visible to it.
        self.commit_hooks: list[Callable[[dict[str, Any]], None]] = []
        # Run by dispose(): what holds connections of its own to this database
        # (app/engine/liveness.py).
        self.dispose_hooks: list[Callable[[], Awaitable[None]]] = []

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """One transaction: commit if the block finishes, roll back if it raises."""
        async with self.sessions() as session:
            async with session.begin():
                yield session
            if session.info:
                for hook in self.commit_hooks:
                    hook(session.info)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: on SQLite it does not take the write lock."""
        async with self._readers() as session:
            yield session

    async def ping(self) -> None:
        async with self.reader() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        for hook in self.dispose_hooks:
            await hook()
        await self.engine.dispose()
