"""Rate slots: even spacing, booking ahead only so far, 45009 blocks, settings parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.db import Database
from app.outbox.ratelimit import (
    Rate,
    RateLimits,
    block_until,
    next_free,
    parse_rates,
    rate_key,
    take_slots,
)

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_parse_rates_and_defaults() -> None:
    assert parse_rates("webhook/send=20/60, appchat/send=300/60") == {
        "webhook/send": Rate(20, 60.0), "appchat/send": Rate(300, 60.0)}
    assert parse_rates("") == {}
    with pytest.raises(ValueError, match="API=COUNT/SECONDS"):
        parse_rates("webhook/send=fast")
    with pytest.raises(ValueError, match="positive"):
        parse_rates("x=0/60")
    limits = RateLimits({"message/send": Rate(100, 60.0)})
    assert limits.for_key("robot:ops") == Rate(20, 60.0)  # per robot, by default
    assert limits.for_key("api:message/send") == Rate(100, 60.0)
    assert limits.for_key("api:kf/send_msg") == Rate(10_000, 60.0)


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
            assert await next_free(session, "robot:ops") == T0 + timedelta(seconds=12)
        async with db.unit_of_work() as session:
            # Booked out beyond the wait: nothing is booked, nothing moves.
            assert await take_slots(session, "robot:ops", rate, T0, timedelta(seconds=2), 1) == []
            assert await next_free(session, "robot:ops") == T0 + timedelta(seconds=12)
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
            await block_until(session, "api:message/send", T0 + timedelta(seconds=60))
            assert await take_slots(session, "api:message/send", Rate(600, 60.0),
                                    T0 + timedelta(seconds=30), timedelta(seconds=5), 1) == []
            # Blocking never moves a key backwards.
            await block_until(session, "api:message/send", T0)
            assert await next_free(session, "api:message/send") == T0 + timedelta(seconds=60)
    finally:
        await db.dispose()
