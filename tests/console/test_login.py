"""Logging in to the console: cookies, the generic failure, the throttle, the login's CSRF,
and sessions that end when the operator is removed or the password changes."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from app.faces.console import login, session_store
from app.faces.console.sessions import LOGIN_COOKIE, SESSION_COOKIE, cookies_for
from app.faces.console.throttle import CLIENT_LIMIT, LIMIT
from tests.conftest import OPERATOR, LogRecorder, RunningApp, serve_app
from tests.console.conftest import (
    OTHER,
    OTHER_PASSWORD,
    PASSWORD,
    Console,
    console_settings,
    csrf_of,
    give_password,
    log_in,
    logged_in,
    new_client,
)


async def test_a_page_sends_to_the_login_and_back(console_app: RunningApp) -> None:
    client = console_app.client
    page = await client.get("/console/funnel", params={"by": "channel"})
    assert page.status_code == 303
    assert page.headers["location"] == "/console/login?next=%2Fconsole%2Ffunnel%3Fby%3Dchannel"

    response = await log_in(client, OPERATOR, PASSWORD, next_path="/console/funnel?by=channel")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/funnel?by=channel"
    cookie = next(v for v in response.headers.get_list("set-cookie")
                  if v.startswith(f"{SESSION_COOKIE}="))
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert "path=/console" in cookie.lower() and "max-age=43200" in cookie.lower()
    assert "secure" not in cookie.lower()  # SOPBOT_PUBLIC_URL is http:// here

    page = await client.get("/console/funnel")
    assert page.status_code == 200
    assert OPERATOR in page.text and "退出" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    home = await client.get("/console")
    assert (home.status_code, home.headers["location"]) == (303, "/console/funnel")
    again = await client.get("/console/login", params={"next": "/console/funnel"})
    assert (again.status_code, again.headers["location"]) == (303, "/console/funnel")


async def test_cookies_are_secure_behind_https(db_url: str) -> None:
    settings = console_settings(db_url, public_url="https://console.example.com")
    async with serve_app(settings, run_worker=False) as app:
        form = await app.client.get("/console/login")
        assert "secure" in form.headers["set-cookie"].lower()
        await give_password(app, OPERATOR, PASSWORD)
        # httpx keeps a Secure cookie from plain http, so the browser's part is played here.
        nonce = re.search(f"{LOGIN_COOKIE}=([^;]+)", form.headers["set-cookie"]).group(1)
        response = await app.client.post("/console/login", data={
            "userid": OPERATOR, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
            headers={"Cookie": f"{LOGIN_COOKIE}={nonce}"})
        assert response.status_code == 303
        assert "secure" in response.headers["set-cookie"].lower()


def _without_token(html: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]*"', "", html)


async def test_wrong_password_and_unknown_user_get_the_same_answer(
        console_app: RunningApp, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = LogRecorder()
    monkeypatch.setattr(login, "log", recorder)
    await give_password(console_app, "op_gone", "some-password-1")  # has a password, no role
    answers = []
    for userid, password in ((OPERATOR, "wrong-password"), ("nobody", "wrong-password"),
                             ("op_gone", "some-password-1")):
        async with new_client(console_app) as client:
            response = await log_in(client, userid, password)
            assert SESSION_COOKIE not in response.cookies
            answers.append((response.status_code,
                            _without_token(response.text).replace(userid, "USER")))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 401 and "账号或密码错误" in answers[0][1]
    failures = [(fields["userid"], fields["reason"]) for level, event, fields in recorder.lines
                if event == "console_login_failed"]
    assert [reason for _, reason in failures] == ["wrong_password", "not_an_operator",
                                                  "not_an_operator"]
    assert failures[0][0] == OPERATOR
    assert all(re.fullmatch("unknown:[0-9a-f]{8}", userid) for userid, _ in failures[1:])
    assert not any("wrong-password" in str(line) for line in recorder.lines)


async def test_the_log_names_only_operators_userids(
        console_app: RunningApp, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = LogRecorder()
    monkeypatch.setattr(login, "log", recorder)
    typed = "My-Secret-Pass-9"  # a password typed into the userid box
    async with browser_at(console_app, "203.0.113.66") as client:
        for _ in range(LIMIT + 1):  # failures, then a 429
            await log_in(client, typed, "whatever-1")
        await client.post("/console/login", data={"userid": typed, "password": "x"})  # 403
    events = [event for _, event, _ in recorder.lines]
    assert {"console_login_failed", "console_login_throttled",
            "console_login_csrf_rejected"} <= set(events)
    assert not any(typed.lower() in str(line).lower() for line in recorder.lines)
    shown = {fields["userid"] for _, _, fields in recorder.lines}
    assert len(shown) == 1  # the same text, the same tag: repeated guesses stay visible


def browser_at(app: RunningApp, address: str) -> httpx.AsyncClient:
    """A browser of its own at `address` (the console's test settings trust X-Forwarded-For
    from 127.0.0.1, as from a reverse proxy on the same host)."""
    return httpx.AsyncClient(base_url=app.base_url, timeout=10,
                             headers={"X-Forwarded-For": address})


async def test_five_failures_block_the_userid_from_that_client(console_app: RunningApp) -> None:
    async with browser_at(console_app, "203.0.113.66") as client:
        for _ in range(5):
            assert (await log_in(client, OPERATOR, "not-the-password")).status_code == 401
        blocked = await log_in(client, OPERATOR, PASSWORD)  # even the right password
        assert blocked.status_code == 429
        assert "登录失败次数过多" in blocked.text
        assert SESSION_COOKIE not in blocked.cookies
        assert (await client.get("/console/funnel")).status_code == 303
        # Another operator still logs in from there.
        assert (await log_in(client, OTHER, OTHER_PASSWORD)).status_code == 303
    # Someone guessing elsewhere cannot lock the operator out of their own browser.
    async with browser_at(console_app, "192.0.2.10") as client:
        assert (await log_in(client, OPERATOR, PASSWORD)).status_code == 303


async def test_guessing_unknown_userids_is_throttled_per_client(
        console_app: RunningApp) -> None:
    async with browser_at(console_app, "203.0.113.66") as client:
        for number in range(CLIENT_LIMIT):
            assert (await log_in(client, f"guess_{number}", "x-password")).status_code == 401
        assert (await log_in(client, "guess_new", "x-password")).status_code == 429
        assert (await log_in(client, OPERATOR, PASSWORD)).status_code == 429
    async with browser_at(console_app, "192.0.2.10") as client:
        assert (await log_in(client, "guess_new", "x-password")).status_code == 401


async def test_parallel_guesses_get_no_more_than_the_limit(console_app: RunningApp) -> None:
    form = await console_app.client.get("/console/login")
    data = {"userid": OPERATOR, "password": "not-the-password", "csrf_token": csrf_of(form.text)}
    answers = await asyncio.gather(*(console_app.client.post("/console/login", data=data)
                                     for _ in range(2 * LIMIT)))
    assert sorted(a.status_code for a in answers) == [401] * LIMIT + [429] * LIMIT


async def test_login_without_the_forms_token_is_refused(console_app: RunningApp) -> None:
    data = {"userid": OPERATOR, "password": PASSWORD}
    async with new_client(console_app) as attacker:
        form = await attacker.get("/console/login")
        token = csrf_of(form.text)
    async with new_client(console_app) as client:
        missing = await client.post("/console/login", data=data)
        # A token made for another browser's nonce cookie.
        stolen = await client.post("/console/login", data={**data, "csrf_token": token})
        for response in (missing, stolen):
            assert response.status_code == 403
            assert SESSION_COOKIE not in response.cookies
        assert (await client.get("/console/funnel")).status_code == 303


async def test_a_planted_login_nonce_is_replaced(console_app: RunningApp) -> None:
    planted = "planted-by-a-sibling-site"
    # Whoever plants the cookie loads the form with it first, for a token that matches it.
    async with new_client(console_app) as attacker:
        attacker.cookies.set(LOGIN_COOKIE, planted, path="/console")
        form = await attacker.get("/console/login")
        assert form.cookies[LOGIN_COOKIE] != planted  # a fresh, signed one instead
        token = csrf_of(form.text)
    # The victim's browser carries the planted cookie; the attacker's page posts its login.
    async with new_client(console_app) as victim:
        victim.cookies.set(LOGIN_COOKIE, planted, path="/console")
        response = await victim.post("/console/login", data={
            "userid": OTHER, "password": OTHER_PASSWORD, "csrf_token": token})
        assert response.status_code == 403
        assert SESSION_COOKIE not in response.cookies


@pytest.mark.parametrize(("fetch_site", "status"), [
    ("same-origin", 303), ("same-site", 403), ("cross-site", 403)])
async def test_a_login_posted_from_another_site_is_refused(
        console_app: RunningApp, fetch_site: str, status: int) -> None:
    # Even with a form token and cookie the server issued (anyone can fetch a pair and plant
    # it), the browser's Sec-Fetch-Site tells a sibling subdomain's page from the console's.
    async with new_client(console_app) as client:
        form = await client.get("/console/login")
        response = await client.post("/console/login", headers={"Sec-Fetch-Site": fetch_site},
                                     data={"userid": OTHER, "password": OTHER_PASSWORD,
                                           "csrf_token": csrf_of(form.text)})
        assert response.status_code == status
        assert (SESSION_COOKIE in response.cookies) == (status == 303)


@pytest.mark.parametrize("target", ["https://evil.example/console", "//evil.example/console",
                                    "/\\evil.example", "/verify/x", "/console/login",
                                    "/console/../verify/x", "/console/%2e%2e/verify/x"])
async def test_next_never_leaves_the_console(console_app: RunningApp, target: str) -> None:
    response = await log_in(console_app.client, OPERATOR, PASSWORD, next_path=target)
    assert (response.status_code, response.headers["location"]) == (303, "/console")


async def test_removing_the_operator_ends_their_session(console: Console) -> None:
    runtime = console.app.runtime
    runtime.settings = runtime.settings.model_copy(update={"operators": frozenset({OTHER})})
    page = await console.client.get("/console/funnel")
    assert page.status_code == 303 and page.headers["location"].startswith("/console/login")
    assert (await console.post("/console/logout")).status_code == 401
    assert (await log_in(console.client, OPERATOR, PASSWORD)).status_code == 401


async def test_a_password_change_ends_older_sessions(console: Console) -> None:
    async with new_client(console.app) as other_browser:
        second = await logged_in(console.app, other_browser)
        await give_password(console.app, OPERATOR, "a-new-password-9")
        for client in (console.client, second.client):
            assert (await client.get("/console/funnel")).status_code == 303
        assert (await log_in(other_browser, OPERATOR, PASSWORD)).status_code == 401
        assert (await log_in(other_browser, OPERATOR, "a-new-password-9")).status_code == 303
        assert (await other_browser.get("/console/funnel")).status_code == 200


async def test_the_session_csrf_token_is_only_in_forms(console: Console) -> None:
    # No script reads a <meta> copy (a script would send it as X-CSRF-Token), so none is made.
    page = (await console.client.get("/console/funnel")).text
    in_forms = page.count(f'name="csrf_token" value="{console.csrf}"')
    assert in_forms >= 1 and page.count(console.csrf) == in_forms


async def test_logout_ends_every_copy_of_the_session(console: Console) -> None:
    copied = console.client.cookies[SESSION_COOKIE]
    async with new_client(console.app) as thief, new_client(console.app) as other_browser:
        thief.cookies.set(SESSION_COOKIE, copied, path="/console")
        assert (await thief.get("/console/funnel")).status_code == 200
        await logged_in(console.app, other_browser)  # the same operator, another session
        response = await console.post("/console/logout")
        assert (response.status_code, response.headers["location"]) == (303, "/console/login")
        assert SESSION_COOKIE not in console.client.cookies
        assert (await console.client.get("/console/funnel")).status_code == 303
        assert (await thief.get("/console/funnel")).status_code == 303
        assert (await other_browser.get("/console/funnel")).status_code == 200


async def test_a_session_ends_on_every_replica(console: Console) -> None:
    """Sessions live in the database: a logout on one replica ends the cookie on another."""
    copied = console.client.cookies[SESSION_COOKIE]
    async with serve_app(console.app.runtime.settings, run_worker=False) as replica:
        replica.client.cookies.set(SESSION_COOKIE, copied, path="/console")
        assert (await replica.client.get("/console/funnel")).status_code == 200
        await console.post("/console/logout")
        assert (await replica.client.get("/console/funnel")).status_code == 303


async def test_a_removed_operators_sessions_end_for_good(db_url: str) -> None:
    """Taken out of SOPBOT_OPERATORS and put back later: the old cookie opens nothing."""
    async with serve_app(console_settings(db_url), run_worker=False) as app:
        await give_password(app, OPERATOR, PASSWORD)
        copied = (await logged_in(app, app.client)).client.cookies[SESSION_COOKIE]
    async with serve_app(console_settings(db_url, operators=frozenset({OTHER})),
                         run_worker=False):
        pass  # a start without the operator
    async with serve_app(console_settings(db_url), run_worker=False) as app:
        app.client.cookies.set(SESSION_COOKIE, copied, path="/console")
        assert (await app.client.get("/console/funnel")).status_code == 303


async def test_forwarded_addresses_count_only_from_a_trusted_proxy(db_url: str) -> None:
    """By default X-Forwarded-For is nobody's word: rotating it gives a guesser no fresh
    budget (uvicorn's own default would believe it from 127.0.0.1)."""
    async with serve_app(console_settings(db_url, trusted_proxies=()), run_worker=False) as app:
        await give_password(app, OPERATOR, PASSWORD)
        statuses = []
        for number in range(LIMIT + 1):
            async with browser_at(app, f"198.51.100.{number}") as client:
                statuses.append((await log_in(client, OPERATOR, "wrong-password")).status_code)
        assert statuses == [401] * LIMIT + [429]


async def test_a_forged_or_altered_cookie_is_no_session(console: Console) -> None:
    value = console.client.cookies[SESSION_COOKIE]
    payload, _, signature = value.rpartition(".")
    async with new_client(console.app) as client:
        for forged in ("garbage", value[:-2] + "xx", payload + "." + signature[::-1]):
            client.cookies.set(SESSION_COOKIE, forged, path="/console")
            assert (await client.get("/console/funnel")).status_code == 303
        client.cookies.set(SESSION_COOKIE, value, path="/console")
        assert (await client.get("/console/funnel")).status_code == 200


async def test_a_session_past_its_end_opens_nothing(console: Console) -> None:
    """The row's own end counts, not only the cookie's signed age."""
    runtime = console.app.runtime
    async with runtime.db.unit_of_work() as session:
        token, _ = await session_store.open_session(session, OPERATOR, ttl_s=-1)
    cookie = cookies_for(runtime.settings)._sessions.dumps({"t": token})
    async with new_client(console.app) as client:
        client.cookies.set(SESSION_COOKIE, cookie, path="/console")
        assert (await client.get("/console/funnel")).status_code == 303
