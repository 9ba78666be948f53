"""Several senders on one database, a sender that dies mid-batch, and token single flight."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from app.engine.db import Database, utcnow
from app.engine.outbox.models import SENT, UNKNOWN
from app.engine.outbox.outcomes import Outcome
from app.engine.outbox.sender import Planned
from app.engine.wecom.tokens import TokenStore, cache_key
from tests.fakes.wecom import FakeWeCom
from tests.outbox.conftest import Outbox, make_outbox, robot_text, texts, welcome

WELCOME = "externalcontact/send_welcome_msg"
WEBHOOK = "webhook/send"


async def test_concurrent_senders_deliver_each_row_exactly_once(db_url: str,
                                                               fake: FakeWeCom) -> None:
    # Three senders as three processes would be: each its own engine, pool, client and tokens.
    boxes = [make_outbox(db_url, fake) for _ in range(3)]
    try:
        for n in range(150):
            await boxes[0].enqueue(f"welcome:c{n}", welcome(f"c{n}", f"欢迎{n}"))
            await boxes[0].enqueue(f"post:c{n}", robot_text(f"帖子{n}"))
        senders = [box.sender for box in boxes]
        assert len({s.owner for s in senders}) == 3
        # Every sender drains both lanes at the same time, on the same rows.
        await asyncio.gather(*(s.drain(fast) for s in senders for fast in (False, True)))
        await boxes[0].drain_until_settled()
        welcomes = Counter(call.body["welcome_code"] for call in fake.calls_to(WELCOME))
        posts = Counter(texts(fake.calls_to(WEBHOOK)))
        assert len(welcomes) == 150 and set(welcomes.values()) == {1}
        assert len(posts) == 150 and set(posts.values()) == {1}
        assert {row.status for row in (await boxes[0].rows()).values()} == {SENT}
        # The work was shared, not done by one while the others idled.
        assert sum(s.counts[SENT] for s in senders) == 300
        assert sum(1 for s in senders if s.counts[SENT]) >= 2
    finally:
        for box in boxes:
            await box.http.aclose()
            await box.db.dispose()


async def test_a_sender_killed_mid_batch_loses_nothing_and_doubles_nothing(
        outbox: Outbox) -> None:
    for n in range(3):
        await outbox.enqueue(f"post:k{n}", robot_text(f"帖子{n}"))
    for n in range(2):
        await outbox.enqueue(f"welcome:k{n}", welcome(f"k{n}"))
    dead = outbox.new_sender()
    batch = await dead._claim(fast=False)
    assert len(batch) == 5
    # It booked and marked in flight the first post and the first welcome, then died before
    # hearing back (the post may or may not have reached WeCom).
    first_post = next(c for c in batch if c.idempotency_key == "post:k0")
    first_welcome = next(c for c in batch if c.idempotency_key == "welcome:k0")
    await dead._book([dead._plan(first_post), dead._plan(first_welcome)])

    # Until its lease runs out, nobody else touches the rows.
    assert await outbox.sender.drain(False) == 0
    # Past the lease (the clock runs on from there).
    skew = timedelta(seconds=dead.lease_s + 1)
    outbox.sender.clock = lambda: utcnow() + skew
    await outbox.sender.drain(False)
    rows = await outbox.rows()
    # The post that may have left is not resent blindly: an operator decides.
    assert rows["post:k0"].status == UNKNOWN
    assert "not resent" in (rows["post:k0"].last_error or "")
    assert {rows[k].status for k in ("post:k1", "post:k2", "welcome:k0", "welcome:k1")} == {SENT}
    assert sorted(texts(outbox.fake.calls_to(WEBHOOK))) == ["帖子1", "帖子2"]
    # A welcome code is single use, so the in-flight welcome is simply sent (again, at most).
    assert sorted(c.body["welcome_code"] for c in outbox.fake.calls_to(WELCOME)) == ["k0", "k1"]
    # The dead sender's late outcome, if it ever came, would not overwrite the new one.
    item = Planned(first_post)
    item.outcome = Outcome.later(first_post, utcnow(), counted=True, error="late")
    await dead._settle([item])
    assert (await outbox.row("post:k0")).status == UNKNOWN


async def test_concurrent_callers_cause_one_token_fetch(outbox: Outbox) -> None:
    tokens = await asyncio.gather(*(outbox.tokens.get("agent") for _ in range(10)))
    assert len(set(tokens)) == 1
    assert len(outbox.fake.calls_to("gettoken")) == 1
    # Two callers told the same token was rejected: one refresh between them.
    outbox.fake.expire_tokens(40014)
    refreshed = await asyncio.gather(outbox.tokens.refresh("agent", tokens[0]),
                                     outbox.tokens.refresh("agent", tokens[0]))
    assert refreshed[0] == refreshed[1] != tokens[0]
    assert len(outbox.fake.calls_to("gettoken")) == 2


async def test_tokens_are_cached_in_the_database(outbox: Outbox) -> None:
    first = await outbox.tokens.get("agent")
    # A new process (fresh memory) takes the stored token instead of calling gettoken.
    again = TokenStore(outbox.db, outbox.sender.client.fetch_token, outbox.tokens.keys)
    assert await again.get("agent") == first
    assert again.fetches == 0
    # Near expiry it is refreshed ahead of time.
    soon = TokenStore(outbox.db, outbox.sender.client.fetch_token, outbox.tokens.keys,
                      clock=lambda: utcnow() + timedelta(seconds=7200 - 60))
    assert await soon.get("agent") == first  # the fake hands out the same token until expiry
    assert soon.fetches == 1
    # A changed secret is another cache entry.
    assert cache_key("agent", "wwcorp", "a") != cache_key("agent", "wwcorp", "b")


async def test_replicas_share_one_refresh(db_url: str, fake: FakeWeCom) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite belongs to one process; replicas need PostgreSQL")
    boxes = [make_outbox(db_url, fake) for _ in range(3)]
    try:
        tokens = await asyncio.gather(*(box.tokens.get("kf") for box in boxes))
        assert len(set(tokens)) == 1
        assert sum(box.tokens.fetches for box in boxes) == 1
        assert len(fake.calls_to("gettoken")) == 1
        # WeCom drops the token: every replica is told so, one of them fetches the next.
        fake.expire_tokens(42001)
        renewed = await asyncio.gather(*(box.tokens.refresh("kf", tokens[0]) for box in boxes))
        assert len(set(renewed)) == 1 and renewed[0] != tokens[0]
        assert len(fake.calls_to("gettoken")) == 2
    finally:
        for box in boxes:
            await box.http.aclose()
            await box.db.dispose()


async def test_a_token_handed_back_inside_the_refresh_window_is_not_fetched_per_call(
        db_url: str) -> None:
    # WeCom answers gettoken with the same token and its remaining lifetime until it expires:
    # fetched with 240 s left (inside the 300 s refresh-ahead window), it must still be reused.
    db = Database(db_url)
    fetched: list[int] = []

    async def fetch(secret: str) -> tuple[str, int]:
        fetched.append(1)
        return "same-token", 240

    tokens = TokenStore(db, fetch, {"agent": "agent:test"})
    try:
        for _ in range(20):
            assert await tokens.get("agent") == "same-token"
        await asyncio.gather(*(tokens.get("agent") for _ in range(20)))
        assert len(fetched) == 1
        # Half its lifetime later it is fetched again, once.
        later = TokenStore(db, fetch, {"agent": "agent:test"},
                           clock=lambda: utcnow() + timedelta(seconds=121))
        await asyncio.gather(*(later.get("agent") for _ in range(10)))
        assert len(fetched) == 2
    finally:
        await db.dispose()


async def test_a_killed_senders_claims_are_free_at_once_on_postgresql(outbox: Outbox) -> None:
    """Its database session ended with it (its liveness lock with it): another sender takes
    its rows now, not when their lease runs out. SQLite has one process: the lease decides."""
    for n in range(2):
        await outbox.enqueue(f"welcome:d{n}", welcome(f"d{n}"), priority=0)
    dead = outbox.new_sender()
    assert len(await dead._claim(fast=True)) == 2
    await dead.liveness.close()  # as the kernel closes a killed process's connection
    taken = await outbox.sender.drain(True)
    if outbox.db.is_sqlite:
        assert taken == 0
        return
    assert taken == 2
    assert {row.status for row in (await outbox.rows()).values()} == {SENT}
