"""A stand-in for the platform's server that receives the reward webhook (docs/koc.md): what
`issue_rewards` POSTs when SOPBOT_KOC_WEBHOOK_URL points here.

    POST /platform/koc/rewards          the webhook (no X-Sim-Key: its signature is its key)
    GET  /sim/platform/rewards          what it received (behind the control key)

It checks what a careful platform checks: X-Sopbot-Signature is `sha256=` + the hex
HMAC-SHA256 of "<X-Sopbot-Timestamp>.<raw body>" with SOPBOT_KOC_WEBHOOK_SECRET (the service's
variable: one .env serves both), the timestamp within MAX_SKEW_S of the simulator's clock,
an Idempotency-Key, and a JSON object with a reward_id. A bad or missing signature or a stale
timestamp answers 401, anything else wrong 400; without a secret it answers 503. A good one
answers {"ref": "..."}; the same Idempotency-Key again answers the same ref (a retry after a
lost answer issues nothing twice). Every attempt is recorded, refused ones too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

WEBHOOK_PATH = "/platform/koc/rewards"
MAX_SKEW_S = 300
MAX_RECORDS = 10_000

router = APIRouter()


@dataclass
class RewardInbox:
    secret: str | None
    received: list[dict[str, Any]] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)  # Idempotency-Key → ref given

    def receive(self, now: float, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        """(HTTP status, JSON answer) for one POST; recorded either way."""
        record: dict[str, Any] = {"seq": len(self.received) + 1, "time": now,
                                  "idempotency_key": headers.get("idempotency-key"),
                                  "timestamp": headers.get("x-sopbot-timestamp"),
                                  "valid": False, "replay": False, "ref": None}
        status, answer = self._check(now, headers, raw, record)
        record["status"] = status
        self.received.append(record)
        del self.received[:-MAX_RECORDS]
        return status, answer

    def _check(self, now: float, headers: dict[str, str], raw: bytes,
               record: dict[str, Any]) -> tuple[int, Any]:
        if not self.secret:
            return 503, {"error": "no SOPBOT_KOC_WEBHOOK_SECRET: the simulator checks nothing"}
        problem = _signature_problem(self.secret, now, headers, raw)
        if problem is not None:
            record["error"] = problem
            return 401, {"error": problem}
        record["valid"] = True
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = None
        record["body"] = body
        key = headers.get("idempotency-key", "")
        if not isinstance(body, dict) or "reward_id" not in body or not key:
            record["error"] = "needs an Idempotency-Key and a JSON object with reward_id"
            return 400, {"error": record["error"]}
        record["replay"] = key in self.refs
        ref = self.refs.setdefault(key, f"sim-reward-{len(self.refs) + 1:05d}")
        record["ref"] = ref
        return 200, {"ref": ref}


def _signature_problem(secret: str, now: float, headers: dict[str, str],
                       raw: bytes) -> str | None:
    timestamp = headers.get("x-sopbot-timestamp", "")
    if not timestamp.isdigit():
        return "X-Sopbot-Timestamp missing or not epoch seconds"
    if abs(now - int(timestamp)) > MAX_SKEW_S:
        return f"X-Sopbot-Timestamp more than {MAX_SKEW_S} s from now"
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
    given = headers.get("x-sopbot-signature", "")
    if not hmac.compare_digest(given.encode(), ("sha256=" + mac.hexdigest()).encode()):
        return "X-Sopbot-Signature does not match"
    return None


def _inbox(request: Request) -> RewardInbox:
    inbox: RewardInbox = request.app.state.sim.rewards
    return inbox


@router.post(WEBHOOK_PATH)
async def reward_webhook(request: Request) -> JSONResponse:
    sim = request.app.state.sim
    headers = {k.lower(): v for k, v in request.headers.items()}
    status, answer = _inbox(request).receive(sim.clock.now(), headers, await request.body())
    return JSONResponse(answer, status)


@router.get("/sim/platform/rewards")
async def rewards_received(request: Request) -> dict[str, Any]:
    """Every webhook POST received, oldest first: valid, status, body, ref, replay."""
    return {"rewards": _inbox(request).received}
