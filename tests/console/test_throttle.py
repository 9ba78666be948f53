"""The login throttle on the database (SQLite and PostgreSQL): its three budgets, its window,
the addresses an operator logged in from that a guesser cannot lock, and one count shared by
every replica."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from app.engine.bot.scheduler import LEADER_LOCK
from app.engine.db import Database, utcnow
from app.faces.console.throttle import (
    CLIENT_LIMIT,
    KNOWN_FOR,
    LIMIT,
    USERID_LIMIT,
    WINDOW_S,
    Attempt,
    LoginThrottle,
)
from app.operators.models import LoginAttempt

HOME_IP, OFFICE_IP, ATTACKER_IP = "192.0.2.10", "192.0.2.77", "203.0.113.66"


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


async def fail(throttle: LoginThrottle, db: Database, userid: str, client: str) -> Attempt:
    """A login attempt with the wrong password: let through, never marked right."""
    attempt = await throttle.begin(db, userid, client)
    assert attempt.blocked is None, attempt
    return attempt


async def log_in(throttle: LoginThrottle, db: Database, userid: str, client: str) -> None:
    attempt = await throttle.begin(db, userid, client)
    assert attempt.blocked is None, attempt
    async with db.unit_of_work() as session:
        await throttle.succeeded(session, attempt, userid, client)


async def blocked(throttle: LoginThrottle, db: Database, userid: str, client: str) -> str | None:
    """The budget that refuses a new attempt (an attempt let through is taken back as right,
    so looking leaves the counts as they were)."""
    attempt = await throttle.begin(db, userid, client)
    if attempt.blocked is None:
        async with db.unit_of_work() as session:
            row = await session.get(LoginAttempt, attempt.id)
            await session.delete(row)
    return attempt.blocked


async def rows(db: Database) -> int:
    async with db.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(LoginAttempt)) or 0)


async def test_failures_from_a_client_block_that_userid_there_for_the_window(
        db: Database) -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for _ in range(LIMIT):
        await fail(throttle, db, "Op_Alice ", HOME_IP)  # one budget however it is typed
    assert await blocked(throttle, db, "op_alice", HOME_IP) == "userid_client"
    assert await blocked(throttle, db, "op_alice", OFFICE_IP) is None
    assert await blocked(throttle, db, "op_bob", HOME_IP) is None
    clock.advance(WINDOW_S + 1)
    assert await blocked(throttle, db, "op_alice", HOME_IP) is None


async def test_a_refused_attempt_writes_nothing(db: Database) -> None:
    """A guesser past a budget costs a read only: on SQLite a write would queue behind, and
    hold up, the callbacks' one writer."""
    throttle = LoginThrottle()
    for _ in range(LIMIT):
        await fail(throttle, db, "op_alice", ATTACKER_IP)
    before = await rows(db)
    writer = None
    if db.is_sqlite:  # another process holds the one write lock: a read still goes through
        writer = sqlite3.connect(make_url(db.url).database or "", isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
    try:
        for _ in range(20):
            attempt = await asyncio.wait_for(throttle.begin(db, "op_alice", ATTACKER_IP), 2)
            assert attempt.blocked == "userid_client"
    finally:
        if writer is not None:
            writer.execute("ROLLBACK")
            writer.close()
    assert await rows(db) == before


async def test_a_client_has_a_ceiling_over_all_userids_known_or_not(db: Database) -> None:
    throttle = LoginThrottle()
    for number in range(CLIENT_LIMIT):
        await fail(throttle, db, f"guess_{number}", ATTACKER_IP)
    assert await blocked(throttle, db, "another_guess", ATTACKER_IP) == "client"
    assert await blocked(throttle, db, "op_alice", ATTACKER_IP) == "client"
    assert await blocked(throttle, db, "op_alice", HOME_IP) is None
    for number in range(CLIENT_LIMIT):  # an IPv6 client is its /64
        await fail(throttle, db, f"guess_{number}", f"2001:db8:1:2::{number:x}")
    assert await blocked(throttle, db, "op_alice", "2001:db8:1:2:ffff::1") == "client"
    assert await blocked(throttle, db, "op_alice", "2001:db8:1:3::1") is None


async def test_guesses_from_many_addresses_cannot_lock_the_operator_out_of_their_own(
        db: Database) -> None:
    """The ceiling per userid binds the addresses the operator never logged in from; the ones
    they did keep their own budget, whatever a guesser with a thousand addresses does."""
    throttle = LoginThrottle()
    await log_in(throttle, db, "op_alice", HOME_IP)
    await log_in(throttle, db, "op_alice", OFFICE_IP)
    for number in range(USERID_LIMIT):
        await fail(throttle, db, "op_alice", f"198.51.{number // LIMIT}.{number}")
    assert await blocked(throttle, db, "op_alice", "198.51.99.1") == "userid"  # a new guesser
    assert await blocked(throttle, db, "op_alice", HOME_IP) is None
    assert await blocked(throttle, db, "op_alice", OFFICE_IP) is None
    assert await blocked(throttle, db, "op_bob", "198.51.99.1") is None
    # A known address still has its own few tries, no more.
    for _ in range(LIMIT):
        await fail(throttle, db, "op_alice", OFFICE_IP)
    assert await blocked(throttle, db, "op_alice", OFFICE_IP) == "userid_client"
    assert await blocked(throttle, db, "op_alice", HOME_IP) is None


async def test_an_address_is_known_for_a_while_and_for_its_userid_only(db: Database) -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    await log_in(throttle, db, "op_alice", HOME_IP)
    clock.advance(KNOWN_FOR.total_seconds() + 60)
    for number in range(USERID_LIMIT):
        await fail(throttle, db, "op_alice", f"198.51.{number // LIMIT}.{number}")
        await fail(throttle, db, "op_bob", f"198.51.{number // LIMIT}.{number}")
    assert await blocked(throttle, db, "op_alice", HOME_IP) == "userid"  # known too long ago
    assert await blocked(throttle, db, "op_bob", HOME_IP) == "userid"  # never op_bob's


async def test_a_right_password_forgives_that_clients_failures_only(db: Database) -> None:
    throttle = LoginThrottle()
    for _ in range(LIMIT - 1):
        await fail(throttle, db, "op_alice", HOME_IP)
        await fail(throttle, db, "guess", HOME_IP)
    await log_in(throttle, db, "op_alice", HOME_IP)
    for _ in range(LIMIT - 1):  # typos again after a logout: a whole budget
        await fail(throttle, db, "op_alice", HOME_IP)
    assert await blocked(throttle, db, "guess", HOME_IP) is None
    await fail(throttle, db, "guess", HOME_IP)
    assert await blocked(throttle, db, "guess", HOME_IP) == "userid_client"


async def test_parallel_attempts_get_exactly_the_budget_across_replicas(db_url: str) -> None:
    """Two processes' worth of engines on one database: of 2 × LIMIT attempts at once, LIMIT
    go ahead (each counted before its password is checked) and the rest are refused."""
    replicas = [Database(db_url), Database(db_url)]
    throttles = [LoginThrottle(), LoginThrottle()]
    try:
        attempts = await asyncio.gather(*(
            throttles[n % 2].begin(replicas[n % 2], "op_alice", ATTACKER_IP)
            for n in range(2 * LIMIT)))
    finally:
        for database in replicas:
            await database.dispose()
    outcomes = sorted(str(attempt.blocked) for attempt in attempts)
    assert outcomes == ["None"] * LIMIT + ["userid_client"] * LIMIT


async def test_old_attempts_are_deleted(db: Database) -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    await log_in(throttle, db, "op_alice", HOME_IP)
    for number in range(3):
        await fail(throttle, db, f"junk_{number}", ATTACKER_IP)
    assert await rows(db) == 4
    clock.advance(WINDOW_S + 1)
    throttle._purged_at = float("-inf")  # the next attempt purges (at most once a minute)
    await fail(throttle, db, "op_bob", HOME_IP)
    assert await rows(db) == 2  # the success (it makes HOME_IP known) and the new failure
    clock.advance(KNOWN_FOR.total_seconds())
    throttle._purged_at = float("-inf")
    await fail(throttle, db, "op_bob", OFFICE_IP)
    assert await rows(db) == 1


async def test_no_userid_can_wait_on_another_lock_of_the_service(db: Database) -> None:
    """A userid is text anyone types: its lock must not be one the service holds for long.
    'aaacjbqpze' hashes, as the throttle's key, onto the scheduler's lead lock's number."""
    if db.is_sqlite:
        pytest.skip("SQLite takes no advisory locks")
    async with db.engine.connect() as holder:
        await holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LEADER_LOCK})
        await holder.commit()
        attempt = await asyncio.wait_for(
            LoginThrottle().begin(db, "AAACJBQPZE ", ATTACKER_IP), timeout=5)
        assert attempt.blocked is None
        await holder.execute(text("SELECT pg_advisory_unlock_all()"))
        await holder.commit()
