"""What an attempt to send an outbox row comes to: the row's new values (wecom-reference §7).

    sent       WeCom answered errcode 0
    retry      busy (-1, 45033, 41063), rate limited (45009: the whole rate key waits out the
               window, and the attempt is not counted), token rejected twice, not sent at all,
               a configuration error (loud: nothing works until an admin fixes it), or an
               unknown outcome of a request WeCom deduplicates; with exponential backoff, and
               dead once the attempts run out, expired once the deadline would pass first
               (an unknown outcome keeps the row's in-flight mark: a copy may be there)
    sent       also a "done already" errcode after an attempt whose answer was lost (41051
               for a welcome: the earlier attempt used the code), recorded as reconciled
    dead       a final errcode (41051, 41050, 84061, ...): recorded, never retried
    unknown    the request may have gone out and WeCom would not drop a second copy, or its
               code is past the life in which a copy would have told: left for an operator
               (retry or drop), never resent by itself, and never counted as missed
    expired    its deadline passed before it could be sent (never sent at all)

A row an earlier attempt may have delivered (`in_flight_at` set) is asked about, not given up:
sent again while a copy is harmless and its answer tells (`maybe_delivered`), past its deadline
too as long as its code lives; only when nobody can tell any more is it `unknown`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from app.engine.db import utcnow
from app.engine.outbox.models import DEAD, EXPIRED, SENT, UNKNOWN
from app.engine.outbox.store import Claimed
from app.engine.wecom import errors
from app.engine.wecom.api import API_CALLS, ApiCall, ApiResponse


@dataclass(frozen=True)
class Policy:
    max_attempts: int
    base_s: float
    max_s: float

    def backoff(self, attempts: int) -> timedelta:
        """base · 2^(attempts-1), capped, ±20 % jitter so a failed batch does not return as one."""
        seconds = min(self.base_s * 2 ** (attempts - 1), self.max_s)
        return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


@dataclass
class Outcome:
    label: str
    values: dict[str, Any]
    block_until: datetime | None = None  # 45009: nothing of this rate key before then
    loud: bool = field(default=False)  # an admin must act

    @staticmethod
    def sent(response: ApiResponse, now: datetime) -> Outcome:
        return Outcome(SENT, _final(SENT, now) | {
            "errcode": 0, "last_error": None,
            "response": json.dumps(response.model_dump(mode="json"), ensure_ascii=False)})

    @staticmethod
    def reconciled(exc: errors.ApiError, now: datetime) -> Outcome:
        return Outcome(SENT, _final(SENT, now) | {
            "errcode": exc.errcode,
            "last_error": f"an earlier attempt whose answer was lost took effect: {exc}"})

    @staticmethod
    def later(claimed: Claimed, when: datetime, *, counted: bool, error: str,
              errcode: int | None = None, maybe_sent: bool = False) -> Outcome:
        """Back to pending until `when`; an uncounted attempt gives its attempt back. Unless
        this attempt may have reached WeCom, the in-flight mark is what it was before."""
        values: dict[str, Any] = {"next_attempt_at": when, "lease_owner": None,
                                  "lease_until": None, "last_error": error, "errcode": errcode}
        if not maybe_sent:
            values["in_flight_at"] = claimed.in_flight_at
        if not counted:
            values["attempts"] = claimed.attempts - 1
        return Outcome("retry", values)


LOST = Outcome("lost", {})  # the lease was taken over: the row is someone else's now


def _final(status: str, now: datetime) -> dict[str, Any]:
    return {"status": status, "finished_at": now, "lease_owner": None, "lease_until": None}


def dead(error: str, now: datetime, errcode: int | None = None, loud: bool = False) -> Outcome:
    return Outcome(DEAD, _final(DEAD, now) | {"last_error": error, "errcode": errcode},
                   loud=loud)


def expired(claimed: Claimed, now: datetime | None = None) -> Outcome:
    now = now or utcnow()
    return Outcome(EXPIRED, _final(EXPIRED, now) | {
        "last_error": f"deadline {claimed.deadline} passed before it could be sent"})


def unknown(error: str, now: datetime, errcode: int | None = None) -> Outcome:
    return Outcome(UNKNOWN, _final(UNKNOWN, now) | {"last_error": error, "errcode": errcode},
                   loud=True)


def unknown_after_takeover(claimed: Claimed) -> Outcome:
    return unknown("the sender holding it stopped while the request may have been leaving; "
                   "WeCom cannot deduplicate it, so it is not resent: retry or drop it",
                   utcnow())


def rebuild(claimed: Claimed) -> tuple[ApiCall[Any] | None, Outcome | None]:
    """The typed call stored in the row, or a dead outcome if it cannot be rebuilt (a bug)."""
    try:
        return API_CALLS[claimed.api].model_validate(json.loads(claimed.request)), None
    except (KeyError, ValueError, ValidationError) as exc:
        return None, dead(f"cannot rebuild the {claimed.api} request: {type(exc).__name__}",
                          utcnow(), loud=True)


def unknown_past_window(claimed: Claimed) -> Outcome:
    return unknown("an earlier attempt may have reached WeCom and its duplicate check has "
                   "lapsed since, so it is not resent: retry or drop it", utcnow())


def unknown_past_life(claimed: Claimed, now: datetime) -> Outcome:
    return unknown("an earlier attempt may have delivered it and its code is past its life, "
                   "so nobody can tell any more: retry or drop it", now)


def can_still_ask(claimed: Claimed, call: ApiCall[Any], when: datetime) -> bool:
    """Whether a copy sent at `when` gets an answer that tells whether an earlier attempt took
    effect (a duplicate answer, within its code's life)."""
    if not call.done_already:
        return False
    return call.code_life is None or when < claimed.created_at + call.code_life


def maybe_delivered(claimed: Claimed, call: ApiCall[Any], now: datetime) -> Outcome | None:
    """What becomes of a row an earlier attempt may have delivered: None to send it again (a
    copy WeCom drops, and whose answer, 0 or a duplicate answer, says which attempt delivered
    it), even past its deadline while its code can still answer; else unknown."""
    assert claimed.in_flight_at is not None
    if not call.is_dedupable():
        return unknown_after_takeover(claimed)
    window = call.dedupe_window()
    if window is not None and now >= claimed.in_flight_at + window:
        return unknown_past_window(claimed)
    past_deadline = claimed.deadline is not None and now >= claimed.deadline
    if past_deadline and not can_still_ask(claimed, call, now):
        return unknown_past_life(claimed, now)
    return None


def without_request(claimed: Claimed, call: ApiCall[Any], now: datetime) -> Outcome | None:
    """What a row comes to without (another) request, checked when a wave plans it and again
    the moment before it is sent: asked about if an earlier attempt may have delivered it,
    expired if it was never sent and is past its deadline; None to send it."""
    if claimed.in_flight_at is not None:
        return maybe_delivered(claimed, call, now)
    if claimed.deadline is not None and now >= claimed.deadline:
        return expired(claimed, now)
    return None


def decide(claimed: Claimed, call: ApiCall[Any], exc: errors.WeComError, policy: Policy,
           now: datetime) -> Outcome:
    """The outcome of a failed attempt."""
    error = str(exc)
    errcode = exc.errcode if isinstance(exc, errors.ApiError) else None
    dedupable = call.is_dedupable()
    if errcode in call.done_already and claimed.in_flight_at is not None:
        assert isinstance(exc, errors.ApiError)
        return Outcome.reconciled(exc, now)
    if errcode in call.code_gone and claimed.in_flight_at is not None:
        return unknown_past_life(claimed, now)
    if isinstance(exc, errors.RateLimited):
        until = now + timedelta(seconds=exc.retry_after_s)
        outcome = _retry_or_expire(claimed, call, until, error, errcode, counted=False, now=now)
        outcome.block_until = until
        return outcome
    if isinstance(exc, errors.FinalError):
        return dead(error, now, errcode, loud=isinstance(exc, errors.InvalidRequest))
    if isinstance(exc, errors.OutcomeUnknown) and not dedupable:
        return unknown(error, now)
    if claimed.attempts >= policy.max_attempts:
        return dead(f"gave up after {claimed.attempts} attempts: {error}", now, errcode,
                    loud=True)
    outcome = _retry_or_expire(claimed, call, now + policy.backoff(claimed.attempts), error,
                               errcode, counted=True, now=now,
                               maybe_sent=isinstance(exc, errors.OutcomeUnknown))
    outcome.loud = isinstance(exc, errors.ConfigurationError)
    return outcome


def _retry_or_expire(claimed: Claimed, call: ApiCall[Any], when: datetime, error: str,
                     errcode: int | None, counted: bool, now: datetime,
                     maybe_sent: bool = False) -> Outcome:
    """Back to pending until `when`, unless that is past the deadline: then expired if no
    attempt can have delivered it; if one may have, retried while a copy can still ask, else
    unknown."""
    if claimed.deadline is None or when < claimed.deadline:
        return Outcome.later(claimed, when, counted=counted, error=error, errcode=errcode,
                             maybe_sent=maybe_sent)
    if maybe_sent or claimed.in_flight_at is not None:
        if can_still_ask(claimed, call, when):
            return Outcome.later(claimed, when, counted=counted, error=error, errcode=errcode,
                                 maybe_sent=maybe_sent)
        return unknown_past_life(claimed, now)
    outcome = expired(claimed, now)
    outcome.values["last_error"] = f"{error}; no time left before its deadline"
    outcome.values["errcode"] = errcode
    return outcome
