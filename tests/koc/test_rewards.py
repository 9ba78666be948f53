"""The reward ledger (app/koc/rewards.py) and its webhook (app/koc/webhook.py): tiers earned
once, monthly ranks per segment, operators' decisions in order, and approved rewards POSTed to
the platform signed, retried until it answers, never issued twice."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from app.engine.db import Database
from app.koc import referrals, rewards, webhook
from app.koc.models import APPROVED, DECLINED, EARNED, ISSUED, Recommender, Reward
from tests.conftest import rows_of
from tests.koc.people import T0, db, koc, member, recommender

__all__ = ["db"]
SECRET = "platform-secret-0123456789"
HOOK = webhook.Webhook("https://platform.example/koc", SECRET)


async def credit(db: Database, rec: Recommender, n: int, at: datetime = T0,
                 segment: str = "shop_north") -> None:
    """`n` verified friends of `rec`, credited by the settle job."""
    for _ in range(n):
        friend = await member(db, segment=segment)
        async with db.unit_of_work() as session:
            row = await session.get(type(friend), friend.id)
            await referrals.touch(session, row, koc().state_of(rec.short_id), at, koc(),
                                  new_member=True)
    async with db.unit_of_work() as session:
        # Velocity rules off: bursts and phone ranges are not what these tests are about.
        await referrals.settle(session, at, koc(credit={
            "burst": {"max": 1000, "minutes": 1}, "phone_range": {"digits": 10, "max": 1000}}))


async def ledger(db: Database) -> list[tuple[str, str, str]]:
    return [(r.key, r.status, r.label) for r in await rows_of(db, Reward)]


async def test_a_tier_is_earned_once_when_its_count_is_reached(db: Database) -> None:
    rec = await recommender(db)
    await credit(db, rec, 2)
    assert await ledger(db) == []
    await credit(db, rec, 1)
    assert await ledger(db) == [(f"tier:{rec.id}:bronze", EARNED, "50 元进货券")]
    await credit(db, rec, 1)
    assert len(await ledger(db)) == 1


async def test_monthly_ranks_go_to_each_segment_s_top_once(db: Database) -> None:
    north = [await recommender(db) for _ in range(4)]
    south = await recommender(db, await member(db, segment="shop_south"))
    for hours, (rec, n) in enumerate(zip(north, (2, 1, 2, 1), strict=True)):
        await credit(db, rec, n, at=T0 + timedelta(hours=hours))
    await credit(db, south, 1)
    await credit(db, north[3], 5, at=datetime(2026, 12, 2, tzinfo=UTC))  # December's
    now = datetime(2026, 12, 1, 1, tzinfo=UTC)
    assert rewards.previous_month(now) == "2026-11"
    async with db.unit_of_work() as session:
        assert await rewards.monthly_ranks(session, "2026-11", now, koc()) == 4
        assert await rewards.monthly_ranks(session, "2026-11", now, koc()) == 0
    ranks = {r.key: r.recommender_id for r in await rows_of(db, Reward) if r.kind == "rank"}
    # Ties by who got there first: north[0] credited an hour before north[2].
    assert ranks == {"rank:2026-11:shop_north:1": north[0].id,
                     "rank:2026-11:shop_north:2": north[2].id,
                     "rank:2026-11:shop_north:3": north[1].id,
                     "rank:2026-11:shop_south:1": south.id}


async def test_decisions_follow_the_ledger_s_order(db: Database) -> None:
    rec = await recommender(db)
    await credit(db, rec, 10)
    bronze, silver = (r.id for r in await rows_of(db, Reward))
    async with db.unit_of_work() as session:
        assert await rewards.decide(session, [bronze], "issued", "op", T0) == []  # not approved
        assert await rewards.decide(session, [bronze], "approve", "op_alice", T0) == [bronze]
        assert await rewards.decide(session, [bronze, silver], "issued", "op_bob", T0) \
            == [bronze]
        assert await rewards.decide(session, [bronze, silver], "decline", "op", T0, "重复") \
            == [silver]
    rows = await rows_of(db, Reward)
    assert [(r.status, r.decided_by, r.issued_by) for r in rows] == [
        (ISSUED, "op_alice", "hand:op_bob"), (DECLINED, "op", None)]
    assert rows[1].note == "重复"


def platform(seen: list[httpx.Request], status: int = 200):  # type: ignore[no-untyped-def]
    """The platform's server at the transport seam: checks the signature like a real one."""
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        stamp = request.headers["X-Sopbot-Timestamp"]
        mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + request.content,
                       hashlib.sha256).hexdigest()
        if request.headers["X-Sopbot-Signature"] != f"sha256={mac}":
            return httpx.Response(401)
        return httpx.Response(status, json={"ref": f"coupon-{len(seen)}"})
    return httpx.MockTransport(answer)


async def approved(db: Database) -> Reward:
    rec = await recommender(db)
    await credit(db, rec, 3)
    async with db.unit_of_work() as session:
        reward = await session.scalar(select(Reward))
        assert reward is not None
        await rewards.decide(session, [reward.id], "approve", "op_alice", T0)
    return reward


async def test_an_approved_reward_is_posted_signed_and_issued(db: Database) -> None:
    reward, seen = await approved(db), []
    counts = await webhook.issue_approved(db, HOOK, T0, platform(seen))
    assert counts == {"issued": 1, "failed": 0}
    request, = seen
    body = json.loads(request.content)
    assert body["reward_id"] == reward.id and body["label"] == "50 元进货券"
    assert body["platform_user_id"].startswith("u") and body["kind"] == "tier"
    assert request.headers["Idempotency-Key"] == f"koc-reward-{reward.id}"
    row, = await rows_of(db, Reward)
    assert (row.status, row.issued_by, row.issue_ref) == (ISSUED, "webhook", "coupon-1")
    assert await webhook.issue_approved(db, HOOK, T0, platform(seen)) == {"issued": 0,
                                                                          "failed": 0}


async def test_a_wrong_secret_is_refused_and_nothing_is_issued(db: Database) -> None:
    await approved(db)
    seen: list[httpx.Request] = []
    wrong = webhook.Webhook(HOOK.url, "another-secret-0123456789")
    assert await webhook.issue_approved(db, wrong, T0, platform(seen)) == {"issued": 0,
                                                                           "failed": 1}
    row, = await rows_of(db, Reward)
    assert row.status == APPROVED and row.last_error == "HTTP 401: "


async def test_a_failing_platform_is_retried_later_with_the_same_key(db: Database) -> None:
    await approved(db)
    seen: list[httpx.Request] = []
    await webhook.issue_approved(db, HOOK, T0, platform(seen, status=503))
    row, = await rows_of(db, Reward)
    assert (row.status, row.attempts) == (APPROVED, 1)
    assert row.next_attempt_at is not None and row.next_attempt_at > T0
    await webhook.issue_approved(db, HOOK, T0 + timedelta(seconds=30), platform(seen))
    assert len(seen) == 1  # not due yet
    await webhook.issue_approved(db, HOOK, row.next_attempt_at, platform(seen))
    assert seen[0].headers["Idempotency-Key"] == seen[1].headers["Idempotency-Key"]
    row, = await rows_of(db, Reward)
    assert row.status == ISSUED and row.last_error is None


async def test_no_answer_at_all_is_a_failure_not_a_crash(db: Database) -> None:
    await approved(db)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)
    counts = await webhook.issue_approved(db, HOOK, T0, httpx.MockTransport(down))
    assert counts == {"issued": 0, "failed": 1}
    row, = await rows_of(db, Reward)
    assert row.status == APPROVED and "ConnectError" in (row.last_error or "")


async def test_a_month_not_over_earns_no_ranks(db: Database) -> None:
    await credit(db, await recommender(db), 1)
    async with db.unit_of_work() as session:
        assert await rewards.monthly_ranks(session, "2026-11", T0, koc()) == 0
    assert await rows_of(db, Reward) == []
