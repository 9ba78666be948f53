"""Rate slots: even spacing, booking ahead only so far, 45009 blocks, settings parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.engine.config import Rate, parse_rates
from app.engine.db import Database
from app.engine.outbox.ratelimit import (
    RateLimits,
    block_until,
    next_free,
    rate_key,
    take_slots,
)

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_parse_rates_and_defaults() -> None:
    assert parse_rates("webhook/send=20/60, appchat/send=300/60") == {
        "webhook/send": Rate(20, 60.0), "appchat/send": Rate(300, 60.0)}
    assert parse_rates("") == {}
    assert parse_rates("message/send=6000/60+600") == {"message/send": Rate(6000, 60.0, 600)}
    with pytest.raises(ValueError, match="API=COUNT/SECONDS"):
        parse_rates("webhook/send=fast")
    with pytest.raises(ValueError, match="BURST must be smaller"):
        parse_rates("x=10/60+10")
    with pytest.raises(ValueError, match="positive"):
        parse_rates("x=0/60")
    limits = RateLimits({"message/send": Rate(100, 60.0)})
    assert limits.for_key("robot:ops") == Rate(20, 60.0)  # per robot, by default
    assert limits.for_key("api:message/send") == Rate(100, 60.0)
    assert limits.for_key("api:kf/send_msg") == Rate(10_000, 60.0, 1_000)


def test_rate_keys() -> None:
    assert rate_key("webhook/send", {"robot": "ops", "msgtype": "text"}) == "robot:ops"
    assert rate_key("appchat/send", {"chatid": "c1"}) == "api:appchat/send"


async def test_slots_are_evenly_spaced_and_shared(db_url: str) -> None:
    db = Database(db_url)
    rate = Rate(20, 60.0)  # one slot every 3 s
    try:
        async with db.unit_of_work() as session:
            first = await take_slots(session, "robot:ops", rate, T0, timedelta(seconds=7), 5)
        # Only the slots starting within 7 s are booked: T0, T0+3, T0+6.
        assert first == [T0, T0 + timedelta(seconds=3), T0 + timedelta(seconds=6)]
        async with db.unit_of_work() as session:
            # Another sender (or replica) one second later continues after them.
            later = await take_slots(session, "robot:ops", rate, T0 + timedelta(seconds=1),
                                     timedelta(seconds=9), 2)
            assert later == [T0 + timedelta(seconds=9)]
            assert await next_free(session, "robot:ops", rate) == T0 + timedelta(seconds=12)
        async with db.unit_of_work() as session:
            # Booked out beyond the wait: nothing is booked, nothing moves.
            assert await take_slots(session, "robot:ops", rate, T0, timedelta(seconds=2), 1) == []
            assert await next_free(session, "robot:ops", rate) == T0 + timedelta(seconds=12)
            # An idle key starts at "now", not in the past.
            idle = await take_slots(session, "robot:other", rate, T0 + timedelta(hours=1),
                                    timedelta(0), 3)
            assert idle == [T0 + timedelta(hours=1)]
    finally:
        await db.dispose()


async def test_block_until_pushes_the_key_out(db_url: str) -> None:
    db = Database(db_url)
    try:
        async with db.unit_of_work() as session:
            await take_slots(session, "api:message/send", Rate(600, 60.0), T0, timedelta(0), 1)
            await block_until(session, "api:message/send", T0 + timedelta(seconds=60),
                              Rate(600, 60.0))
            assert await take_slots(session, "api:message/send", Rate(600, 60.0),
                                    T0 + timedelta(seconds=30), timedelta(seconds=5), 1) == []
            # Blocking never moves a key backwards.
            await block_until(session, "api:message/send", T0, Rate(600, 60.0))
            assert await next_free(session, "api:message/send",
                                   Rate(600, 60.0)) == T0 + timedelta(seconds=60)
    finally:
        await db.dispose()


async def test_a_quiet_key_lets_its_burst_out_at_once_then_spaces_the_rest(db_url: str) -> None:
    db = Database(db_url)
    rate = Rate(12, 60.0, burst=4)  # four at once, then a slot every 60 / (12 - 3) s
    step = timedelta(seconds=60 / 9)
    try:
        async with db.unit_of_work() as session:
            slots = await take_slots(session, "api:x", rate, T0, timedelta(seconds=14), 10)
        assert slots[:4] == [T0] * 4
        assert [round((t - T0).total_seconds(), 3) for t in slots[4:]] == [
            round(step.total_seconds(), 3), round(2 * step.total_seconds(), 3)]
        async with db.unit_of_work() as session:
            # A minute of quiet refills the burst.
            later = T0 + timedelta(minutes=2)
            assert await take_slots(session, "api:x", rate, later, timedelta(0), 10) == [later] * 4
    finally:
        await db.dispose()


@pytest.mark.parametrize("rate", [Rate(30, 60.0, 10), Rate(11, 60.0), Rate(300, 60.0, 30),
                                  Rate(7, 60.0, 3), Rate(20, 60.0)])
async def test_no_window_of_one_period_holds_more_than_the_count(db_url: str,
                                                                 rate: Rate) -> None:
    """Whatever the demand, booked slots stay within the limit in every window of `per_s`."""
    db = Database(db_url)
    booked: list[datetime] = []
    try:
        for second in range(0, 200):  # a sender asking for more than it may, every second
            async with db.unit_of_work() as session:
                booked += await take_slots(session, "api:y", rate, T0 + timedelta(seconds=second),
                                           timedelta(seconds=3), rate.count)
        assert len(booked) > 2 * rate.count
        for n, start in enumerate(booked):
            end = start + timedelta(seconds=rate.per_s)
            assert sum(1 for t in booked[n:] if t < end) <= rate.count, start
    finally:
        await db.dispose()


async def test_a_block_allows_no_burst_when_it_ends(db_url: str) -> None:
    db = Database(db_url)
    rate = Rate(12, 60.0, burst=4)
    until = T0 + timedelta(seconds=60)
    try:
        async with db.unit_of_work() as session:
            await take_slots(session, "api:z", rate, T0, timedelta(0), 1)
            await block_until(session, "api:z", until, rate)
            assert await next_free(session, "api:z", rate) == until
            slots = await take_slots(session, "api:z", rate, until, timedelta(seconds=7), 5)
        assert slots == [until, until + rate.interval]
    finally:
        await db.dispose()
