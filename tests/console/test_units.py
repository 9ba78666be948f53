"""The console's pieces without a server: password hashes, session cookies' age and salt, the
login's `next`, the periods (the throttle, which needs a database: test_throttle.py)."""

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

from app.faces.console import accounts, flash
from app.faces.console.auth import safe_next
from app.faces.console.periods import PeriodError, parse_period
from app.faces.console.sessions import LOGIN_COOKIE, SESSION_COOKIE, ConsoleCookies, cookies_for
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


def _cookie(response: Response) -> str:
    header = response.headers["set-cookie"]
    return header.split(";")[0].removeprefix(f"{SESSION_COOKIE}=")


def test_a_session_cookie_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    cookies = ConsoleCookies(KEY, session_ttl_s=3600, secure=False)
    response = Response()
    cookies.keep_session(response, "token-1")
    value = _cookie(response)
    assert cookies.token_of(value) == "token-1"
    later = int(datetime.now(UTC).timestamp()) + 3602
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    assert cookies.token_of(value) is None


def test_other_signed_values_are_no_session() -> None:
    cookies = ConsoleCookies(KEY, session_ttl_s=3600, secure=False)
    # A verification link signs with the same key but another salt.
    link = VerifyLinks(KEY, "http://x", 60).token("op_alice")
    assert cookies.token_of(link) is None
    other_key = URLSafeTimedSerializer("another-key-0123456789", salt="sopbot.console.session")
    assert cookies.token_of(other_key.dumps({"t": "token-1"})) is None
    assert cookies.token_of(cookies._sessions.dumps({"u": "op_alice"})) is None
    assert cookies.token_of(cookies._sessions.dumps({"t": ""})) is None


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
        state=SimpleNamespace(runtime=SimpleNamespace(settings=settings))))
    cookies, responses = cookies_for(settings), [Response() for _ in range(5)]
    cookies.keep_session(responses[0], "token-1")
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
