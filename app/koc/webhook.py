"""Issuing approved rewards through the platform's server: a signed POST per reward.

    POST $SOPBOT_KOC_WEBHOOK_URL
    X-Sopbot-Timestamp: 1764900000
    X-Sopbot-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>
    Idempotency-Key: koc-reward-<id>
    {"reward_id": 7, "key": "tier:3:bronze", "kind": "tier", "name": "bronze",
     "label": "50 元进货券", "period": null, "member_id": 12, "external_userid": "wm…",
     "platform_user_id": "u123"}

A 2xx answer issues the reward (its body's "ref", if any, is kept); anything else, or no
answer, is retried with a backoff and shown in the console. The same reward always carries the
same Idempotency-Key, so a retry after a lost answer can be recognised by the platform. The
request goes out with no database transaction open; the result is written only if the reward is
still approved (an operator may have marked it by hand meanwhile).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import or_, select

from app.engine.db import Database
from app.engine.logs import get_logger
from app.koc.models import APPROVED, ISSUED, Recommender, Reward
from app.members.models import Member

log = get_logger("sopbot.koc")
BATCH = 50
MAX_BACKOFF = timedelta(hours=6)
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: str


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


async def issue_approved(db: Database, hook: Webhook, now: datetime,
                         transport: httpx.AsyncBaseTransport | None = None) -> dict[str, int]:
    """POST every approved reward that is due; counts of issued and failed."""
    due = await _due(db, now)
    counts = {"issued": 0, "failed": 0}
    async with httpx.AsyncClient(timeout=TIMEOUT_S, transport=transport) as client:
        for reward_id, body in due:
            ok, ref, error = await _post(client, hook, reward_id, body, now)
            await _record(db, reward_id, ok, ref, error, now)
            counts["issued" if ok else "failed"] += 1
    return counts


async def _due(db: Database, now: datetime) -> list[tuple[int, bytes]]:
    async with db.reader() as session:
        rows = (await session.execute(
            select(Reward, Member).join(Recommender, Recommender.id == Reward.recommender_id)
            .join(Member, Member.id == Recommender.member_id)
            .where(Reward.status == APPROVED, or_(Reward.next_attempt_at.is_(None),
                                                  Reward.next_attempt_at <= now))
            .order_by(Reward.id).limit(BATCH))).all()
    return [(reward.id, json.dumps({
        "reward_id": reward.id, "key": reward.key, "kind": reward.kind, "name": reward.name,
        "label": reward.label, "period": reward.period, "member_id": member.id,
        "external_userid": member.external_userid,
        "platform_user_id": member.platform_user_id}, ensure_ascii=False).encode())
        for reward, member in rows]


async def _post(client: httpx.AsyncClient, hook: Webhook, reward_id: int, body: bytes,
                now: datetime) -> tuple[bool, str | None, str | None]:
    timestamp = str(int(now.timestamp()))
    headers = {"Content-Type": "application/json", "X-Sopbot-Timestamp": timestamp,
               "X-Sopbot-Signature": signature(hook.secret, timestamp, body),
               "Idempotency-Key": f"koc-reward-{reward_id}"}
    try:
        answer = await client.post(hook.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return False, None, f"{type(exc).__name__}: {exc}"[:500]
    if not answer.is_success:
        return False, None, f"HTTP {answer.status_code}: {answer.text[:200]}"
    try:
        ref = answer.json().get("ref") if answer.content else None
    except (ValueError, AttributeError):
        ref = None
    return True, str(ref)[:128] if ref is not None else None, None


async def _record(db: Database, reward_id: int, ok: bool, ref: str | None, error: str | None,
                  now: datetime) -> None:
    async with db.unit_of_work() as session:
        reward = await session.get(Reward, reward_id, with_for_update=True)
        if reward is None or reward.status != APPROVED:
            return  # marked by hand meanwhile
        reward.attempts += 1
        if ok:
            reward.status, reward.issued_by, reward.issued_at = ISSUED, "webhook", now
            reward.issue_ref, reward.last_error, reward.next_attempt_at = ref, None, None
            log.info("reward_issued", reward_id=reward_id, by="webhook")
            return
        backoff = min(timedelta(minutes=2 ** min(reward.attempts, 12)), MAX_BACKOFF)
        reward.last_error, reward.next_attempt_at = error, now + backoff
        log.warning("reward_webhook_failed", reward_id=reward_id, attempts=reward.attempts,
                    error=error)
