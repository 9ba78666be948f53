"""The console's pieces without a server: password hashes, the throttle's window, session
cookies' age and salt, the login's `next`, the periods."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from pydantic import SecretStr
from starlette.responses import Response

from app.console import accounts, flash
from app.console.auth import safe_next
from app.console.periods import PeriodError, parse_period
from app.console.sessions import LOGIN_COOKIE, SESSION_COOKIE, ConsoleCookies, cookies_for
from app.console.throttle import CLIENT_LIMIT, LIMIT, USERID_LIMIT, LoginThrottle
from app.verify.links import VerifyLinks

KEY = "unit-secret-key-0123456789"
HOME_IP, ATTACKER_IP = "192.0.2.10", "203.0.113.66"


def test_hashes_are_salted_self_describing_and_verified() -> None:
    first, second = accounts.hash_password("pass-word-1"), accounts.hash_password("pass-word-1")
    assert first != second  # a salt of its own each time
    scheme, n, r, p, _salt, _key = first.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert accounts.verify_password("pass-word-1", first)
    assert not accounts.verify_password("pass-word-2", first)
    assert not accounts.verify_password("pass-word-1", "md5$abc")
    assert not accounts.verify_password("pass-word-1", "not a hash")
    assert accounts.stamp_of(first) != accounts.stamp_of(second)


class OneRowSession:
    """Stands in for the database session: every userid has the same stored hash."""

    def __init__(self, stored: str) -> None:
        self.stored = stored

    async def get(self, model: object, userid: str) -> SimpleNamespace:
        return SimpleNamespace(password_hash=self.stored)


async def test_password_checks_queue_for_a_few_hashing_slots(
        monkeypatch: pytest.MonkeyPatch) -> None:
    stored, scrypt = accounts.hash_password("pass-word-1"), accounts._scrypt
    running, most = [0], [0]
    lock = threading.Lock()

    def counted_scrypt(*args: Any) -> bytes:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)  # hold the slot long enough for the others to pile up
        with lock:
            running[0] -= 1
        return scrypt(*args)

    monkeypatch.setattr(accounts, "_scrypt", counted_scrypt)
    session = OneRowSession(stored)
    answers = await asyncio.gather(*(accounts.check_password(session, f"u{n}", "pass-word-1")
                                     for n in range(12)))
    assert answers == [True] * 12
    assert 1 < most[0] <= accounts.HASHING_SLOTS


def test_the_throttle_forgets_failures_after_its_window() -> None:
    now = [1000.0]
    throttle = LoginThrottle(limit=5, window_s=900, clock=lambda: now[0])
    for _ in range(5):
        assert throttle.blocked("op_alice", HOME_IP) is None
        throttle.charge("Op_Alice ", HOME_IP)  # the same budget, however it is typed
        now[0] += 60
    assert throttle.blocked("op_alice", HOME_IP) == "userid_client"
    now[0] = 1000.0 + 900 + 1  # the first failure left the window
    assert throttle.blocked("op_alice", HOME_IP) is None
    throttle.charge("op_alice", HOME_IP)
    assert throttle.blocked("op_alice", HOME_IP) == "userid_client"
    throttle.succeeded("op_alice", HOME_IP)
    assert throttle.blocked("op_alice", HOME_IP) is None


def test_failures_from_one_client_do_not_lock_the_userid_out_elsewhere() -> None:
    throttle = LoginThrottle()
    for _ in range(LIMIT):
        throttle.charge("op_alice", ATTACKER_IP)
    assert throttle.blocked("op_alice", ATTACKER_IP) == "userid_client"
    assert throttle.blocked("op_alice", HOME_IP) is None
    assert throttle.blocked("op_bob", ATTACKER_IP) is None


def test_a_userid_has_a_ceiling_over_all_clients() -> None:
    throttle = LoginThrottle()
    for number in range(USERID_LIMIT):
        throttle.charge("op_alice", f"198.51.100.{number // LIMIT}")
    assert throttle.blocked("op_alice", HOME_IP) == "userid"
    assert throttle.blocked("op_bob", HOME_IP) is None


def test_a_client_has_a_ceiling_over_all_userids_known_or_not() -> None:
    throttle = LoginThrottle()
    for number in range(CLIENT_LIMIT):
        throttle.charge(f"guess_{number}", ATTACKER_IP)
    assert throttle.blocked("another_guess", ATTACKER_IP) == "client"
    assert throttle.blocked("op_alice", ATTACKER_IP) == "client"
    assert throttle.blocked("op_alice", HOME_IP) is None
    # An IPv6 client owns its whole /64: new addresses in it are the same client.
    for number in range(CLIENT_LIMIT):
        throttle.charge(f"guess_{number}", f"2001:db8:1:2::{number:x}")
    assert throttle.blocked("op_alice", "2001:db8:1:2:ffff::1") == "client"
    assert throttle.blocked("op_alice", "2001:db8:1:3::1") is None


def test_a_login_counts_as_failed_until_it_succeeds() -> None:
    throttle = LoginThrottle()
    for _ in range(CLIENT_LIMIT):  # an office of operators who all type it right
        throttle.charge("op_alice", HOME_IP)
        throttle.succeeded("op_alice", HOME_IP)
    assert throttle.blocked("op_bob", HOME_IP) is None
    assert throttle.blocked("op_alice", HOME_IP) is None


def test_the_throttle_drops_expired_entries_and_never_reads_into_memory() -> None:
    now = [1000.0]
    throttle = LoginThrottle(limit=5, window_s=900, clock=lambda: now[0])
    for userid in ("op_alice", "junk_1", "junk_2"):
        throttle.charge(userid, HOME_IP)
    for userid in ("op_bob", "op_carol"):
        assert throttle.blocked(userid, ATTACKER_IP) is None  # a look is no entry
    assert throttle.size() == 3 + 3 + 1  # the pairs, the userids, the one client
    now[0] += 901
    throttle.charge("op_dave", HOME_IP)  # the others' windows passed: they go
    assert throttle.size() == 3


def test_filling_the_throttle_with_junk_cannot_reset_a_blocked_userid() -> None:
    now = [1000.0]
    throttle = LoginThrottle(limit=5, window_s=900, clock=lambda: now[0], max_keys=3)
    for _ in range(5):
        throttle.charge("op_alice", HOME_IP)
    for number in range(10):
        now[0] += 1
        throttle.charge(f"junk_{number}", f"198.51.100.{number}")
    assert throttle.blocked("op_alice", HOME_IP) == "userid_client"
    assert throttle.size() <= 3 * 3


def _cookie(response: Response) -> str:
    header = response.headers["set-cookie"]
    return header.split(";")[0].removeprefix(f"{SESSION_COOKIE}=")


def test_a_session_cookie_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    cookies = ConsoleCookies(KEY, session_ttl_s=3600, secure=False)
    response = Response()
    session = cookies.open_session(response, "op_alice", "stamp")
    value = _cookie(response)
    assert cookies.session_of(value) == session
    later = int(datetime.now(UTC).timestamp()) + 3602
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    assert cookies.session_of(value) is None


def test_other_signed_values_are_no_session() -> None:
    cookies = ConsoleCookies(KEY, session_ttl_s=3600, secure=False)
    # A verification link signs with the same key but another salt.
    link = VerifyLinks(KEY, "http://x", 60).token("op_alice")
    assert cookies.session_of(link) is None
    other_key = URLSafeTimedSerializer("another-key-0123456789", salt="sopbot.console.session")
    assert cookies.session_of(other_key.dumps({"u": "op_alice", "c": "x", "p": "y"})) is None
    assert cookies.session_of(cookies._sessions.dumps({"u": "op_alice"})) is None


def test_only_a_login_nonce_this_server_signed_counts() -> None:
    cookies = ConsoleCookies(KEY, session_ttl_s=3600, secure=False)
    assert cookies.login_nonce("planted") != "planted"
    response = Response()
    cookies.keep_login_nonce(response, "nonce-1")
    cookie = response.headers["set-cookie"].split(";")[0].removeprefix(f"{LOGIN_COOKIE}=")
    assert cookies.login_nonce(cookie) == "nonce-1"
    token = cookies.login_form_token("nonce-1")
    assert cookies.login_form_ok(token, cookie)
    assert not cookies.login_form_ok(token, "nonce-1")  # the bare nonce, as planted
    assert not cookies.login_form_ok(token, token)  # the form's token is no cookie (its salt)


def _flags(response: Response) -> set[str]:
    """A Set-Cookie header's flags, without the value and the cookie's age."""
    _value, *flags = (part.strip().lower() for part in response.headers["set-cookie"].split(";"))
    return {flag for flag in flags if not flag.startswith(("max-age", "expires"))}


@pytest.mark.parametrize("public_url", ["http://console.test", "https://console.test"])
def test_every_console_cookie_carries_the_same_flags(public_url: str) -> None:
    settings = SimpleNamespace(public_url=public_url, secret_key=SecretStr(KEY),
                               console_session_h=12)
    request = SimpleNamespace(cookies={flash.FLASH_COOKIE: "old"}, app=SimpleNamespace(
        state=SimpleNamespace(services=SimpleNamespace(settings=settings))))
    cookies, responses = cookies_for(settings), [Response() for _ in range(5)]
    cookies.open_session(responses[0], "op_alice", "stamp")
    cookies.close_session(responses[1])
    cookies.keep_login_nonce(responses[2], "nonce-1")
    flash.put(request, responses[3], "op_alice", "outbox", {"done": 1})
    flash.clear(request, responses[4])
    expected = {"path=/console", "httponly", "samesite=lax"}
    if public_url.startswith("https://"):
        expected.add("secure")
    assert [_flags(response) for response in responses] == [expected] * 5


@pytest.mark.parametrize(("given", "expected"), [
    ("/console/funnel?by=channel", "/console/funnel?by=channel"), ("/console", "/console"),
    (None, "/console"), ("", "/console"), ("https://evil.example/console", "/console"),
    ("//evil.example/console", "/console"), ("/\\evil.example", "/console"),
    ("/consoleX", "/console"), ("/console/login", "/console"), ("/console/\nx", "/console"),
    ("javascript:alert(1)", "/console"),
    # Dot segments, as typed or percent-encoded (once or twice): a browser resolves them.
    ("/console/../verify", "/console"), ("/console/%2e%2e/x", "/console"),
    ("/console/%2E%2E/verify", "/console"), ("/console/.%2e/verify", "/console"),
    ("/console/./funnel", "/console"), ("/console/funnel/..", "/console"),
    ("/console/x%2f..%2f..%2fverify", "/console"), ("/console/%252e%252e/verify", "/console"),
    ("/console/%5c..%5cverify", "/console"), ("/console/%0d%0aX", "/console"),
    # Dots inside a segment, or in the query, are no way out.
    ("/console/members?q=a.b&x=../y", "/console/members?q=a.b&x=../y"),
    ("/console/photos/shop.png", "/console/photos/shop.png"),
])
def test_next_is_a_console_path(given: str | None, expected: str) -> None:
    assert safe_next(given) == expected


def test_periods_are_shanghai_days() -> None:
    now = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 2026-12-01 01:00 in Shanghai
    today = parse_period("today", None, None, now)
    assert today.since_at == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert today.until_at is None and today.label == "2026-12-01"
    week = parse_period("7d", None, None, now)
    assert week.label == "2026-11-25 至 2026-12-01"
    custom = parse_period("custom", "2026-11-01", "2026-11-02", now)
    assert (custom.since_at, custom.until_at) == (datetime(2026, 10, 31, 16, tzinfo=UTC),
                                                  datetime(2026, 11, 2, 16, tzinfo=UTC))
    with pytest.raises(PeriodError):
        parse_period("custom", "2025-01-01", "2026-11-02", now)  # over a year
