"""Operators' console passwords: scrypt (stdlib) with a random salt per password.

A stored hash reads "scrypt$n$r$p$salt$hash" (salt and hash in URL-safe base64), so the cost
parameters travel with each hash. Hashing takes ~50 ms of CPU and 16 MiB on purpose; it runs
in a worker thread so the event loop keeps answering callbacks meanwhile, at most HASHING_SLOTS
at once.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import weakref
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.db import utcnow
from app.faces.console import session_store
from app.operators.models import ConsoleOperator

T = TypeVar("T")

MIN_LENGTH = 8
SCHEME = "scrypt"
# OWASP's scrypt floor (N=2^17 costs 128 MiB per login; 2^14 with r=8 is 16 MiB, ~50 ms).
COST_N, BLOCK_R, PARALLEL_P = 2**14, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32
MAX_MEM = 64 * 1024 * 1024
# Hashes computed at once, per event loop. A burst of logins (guessers included: the throttle
# lets unknown userids through until a client's ceiling) waits its turn here instead of taking
# a worker thread and 16 MiB each; 3 leaves threads for the rest of the app.
HASHING_SLOTS = 3
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary())
# Verified against when the userid has no password, so a probe cannot tell "no such operator"
# from "wrong password" by the time the answer takes.
_DUMMY: str | None = None


class PasswordTooShort(ValueError):
    """The password has fewer than MIN_LENGTH characters."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=MAX_MEM,
                          dklen=KEY_BYTES)


def hash_password(password: str) -> str:
    """A new self-describing hash with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, COST_N, BLOCK_R, PARALLEL_P)
    return f"{SCHEME}${COST_N}${BLOCK_R}${PARALLEL_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored`; False for a hash this code cannot read."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != SCHEME:
            return False
        computed = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
        return hmac.compare_digest(computed, _unb64(key))
    except ValueError:
        return False


def _dummy_hash() -> str:
    # Made once, in a worker thread (two threads racing here only both compute it).
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = hash_password(secrets.token_urlsafe(16))
    return _DUMMY


async def set_password(session: AsyncSession, userid: str, password: str) -> None:
    """Store a new password for `userid` and end every console session they had open (flush
    only; the caller commits)."""
    if len(password) < MIN_LENGTH:
        raise PasswordTooShort(f"a console password needs at least {MIN_LENGTH} characters")
    stored = await _in_hashing_slot(hash_password, password)
    row = await session.get(ConsoleOperator, userid)
    if row is None:
        session.add(ConsoleOperator(userid=userid, password_hash=stored, changed_at=utcnow()))
    else:
        row.password_hash, row.changed_at = stored, utcnow()
    await session_store.end_sessions_of(session, userid)
    await session.flush()


async def check_password(session: AsyncSession, userid: str, password: str) -> bool:
    """Whether `password` is `userid`'s; as slow for an unknown userid as for a known one."""
    return await password_matches(password, await stored_hash(session, userid))


async def password_matches(password: str, stored: str | None) -> bool:
    """Whether `password` matches `stored` (a userid's hash, None when they have none), as slow
    either way. Needs no database session: a caller waiting for a slot should hold none."""
    return await _in_hashing_slot(_matches, password, stored)


async def _in_hashing_slot(work: Callable[..., T], *args: object) -> T:
    """`work(*args)` in a worker thread once one of HASHING_SLOTS is free."""
    slots = _slots.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(HASHING_SLOTS))
    await slots.acquire()
    # The slot is freed when the thread ends, not when the caller gives up: a client that
    # disconnects mid-hash must not let a new hash start beside the one still running.
    running = asyncio.ensure_future(asyncio.to_thread(work, *args))
    running.add_done_callback(lambda _: slots.release())
    return await asyncio.shield(running)


def _matches(password: str, stored: str | None) -> bool:
    if stored is None:
        verify_password(password, _dummy_hash())  # the same work, its answer ignored
        return False
    return verify_password(password, stored)


async def stored_hash(session: AsyncSession, userid: str) -> str | None:
    row = await session.get(ConsoleOperator, userid)
    return None if row is None else row.password_hash
