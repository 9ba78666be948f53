"""The attack list of the security review (issue 13), run against real `sopbot` processes as a
new user would start them (targets.py): `sopbot serve` in simulator mode on a real demo
database (SQLite), and two replicas on PostgreSQL with a standalone simulator.

Each attack is a test; what it finds refused today is what it asserts. The last test reads the
services' logs for anything they must never hold.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine, text

from app.engine.db import sync_url
from tests.conftest import PG_URL
from tests.fakes import payloads
from tests.security.targets import (
    OPERATOR_PASSWORD,
    Target,
    member_with_a_link,
    postgresql_replicas,
    run,
    sqlite_demo,
    submit_verification,
)

CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
# The operator's usual address: logged in from at the start, so it is known to the throttle.
HOME = "127.0.4.1"
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


def _pg() -> object:
    marks = [] if PG_URL else [pytest.mark.skip(reason="SOPBOT_TEST_PG_URL not set: no PostgreSQL")]
    return pytest.param("postgresql", marks=marks)


@pytest.fixture(scope="module", params=["sqlite", _pg()])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[Target]:
    workdir = tmp_path_factory.mktemp(f"attack-{request.param}")
    start = sqlite_demo(workdir) if request.param == "sqlite" else postgresql_replicas(
        workdir, PG_URL)
    with start as running:
        running.link = member_with_a_link(running, "wmAttackedShop")
        submitted = submit_verification(running, running.link, "13912345678")
        assert submitted.status_code == 200, submitted.text
        with browser(running, HOME) as home:
            assert log_in(home, running.operator, OPERATOR_PASSWORD).status_code == 303
        yield running


def rows(target: Target, sql: str, **params: object) -> list[tuple[object, ...]]:
    engine = create_engine(sync_url(target.env["SOPBOT_DATABASE_URL"]))
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def browser(target: Target, address: str = "127.0.0.1", base: str | None = None,
            **headers: str) -> httpx.Client:
    """A browser of its own, connecting from `address` (any 127.x.y.z is this machine)."""
    return httpx.Client(base_url=base or target.url, timeout=30, headers=headers,
                        transport=httpx.HTTPTransport(local_address=address))


def log_in(client: httpx.Client, userid: str, password: str) -> httpx.Response:
    form = client.get("/console/login")
    token = CSRF.search(form.text)
    assert token, form.text[:300]
    return client.post("/console/login", data={"userid": userid, "password": password,
                                                "csrf_token": token.group(1), "next": "/console"})


def pending_review(target: Target) -> int:
    [(review_id,)] = rows(target, "SELECT v.id FROM verification v JOIN member m "
                                  "ON m.id = v.member_id WHERE m.external_userid = :who",
                          who="wmAttackedShop")
    return int(review_id)


# 1. The simulator is no open control panel.

def test_the_simulators_control_paths_answer_nobody_without_its_key(target: Target) -> None:
    review = pending_review(target)
    command = {"plaintext": (
        f"<xml><ToUserName><![CDATA[{target.env['WECOM_CORP_ID']}]]></ToUserName>"
        f"<FromUserName><![CDATA[{target.operator}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[/review approve {review}]]></Content><MsgId>7301</MsgId>"
        f"<AgentID>1000002</AgentID></xml>"), "agent_id": 1000002}
    for key in ({}, {"X-Sim-Key": "guess-0123456789abcdef"}):
        for method, path, body in (("GET", "requests", None), ("GET", "state", None),
                                   ("GET", "callbacks", None), ("GET", "faults", None),
                                   ("POST", "clock", {"advance_s": 86400}),
                                   ("POST", "faults", {"errcode": -1}),
                                   ("POST", "scenarios/raw_callback", command),
                                   ("POST", "scenarios/app_text", {
                                       "from_user": target.operator,
                                       "content": f"/review approve {review}"})):
            answer = httpx.request(method, f"{target.sim_base}/sim/{path}", json=body,
                                   headers=key, timeout=30)
            assert answer.status_code in (401, 403, 404), (method, path, answer.status_code)
            assert "verify" not in answer.text
    status = httpx.get(f"{target.url}/api/reviews/{review}", timeout=30,
                       headers={"Authorization": f"Bearer {target.api_key}"}).json()["status"]
    assert status == "pending"


def test_serve_with_the_simulator_will_not_listen_on_a_public_address(target: Target) -> None:
    if target.name != "sqlite":
        pytest.skip("the built-in simulator runs only on SQLite")
    env = {**target.env, "SOPBOT_HOST": "0.0.0.0", "SOPBOT_PORT": "1"}
    with pytest.raises(AssertionError, match="SOPBOT_SIM_ALLOW_REMOTE"):
        run(["serve"], env, target.workdir, timeout=60)


# 2. Deep XML is a 400 with one short log line.

def test_deeply_nested_xml_is_refused_without_a_traceback(target: Target) -> None:
    before = target.log_size()
    deep_envelope = b"<xml>" + b"<a>" * 500 + b"x" + b"</a>" * 500 + b"</xml>"
    params = {"msg_signature": "0" * 40, "timestamp": str(int(time.time())), "nonce": "n"}
    for _ in range(50):
        answer = httpx.post(f"{target.url}/wecom/callback", params=params,
                            content=deep_envelope, timeout=30)
        assert answer.status_code == 400
    deep_payload = "<xml>" + "<a>" * 5000 + "x" + "</a>" * 5000 + "</xml>"
    signed, body = target.crypto.encrypt_callback(deep_payload)
    answer = httpx.post(f"{target.url}/wecom/callback", params=signed, content=body, timeout=30)
    assert answer.status_code == 400
    time.sleep(0.5)
    assert target.log_size() - before < 51 * 600  # one short line each
    assert "Traceback" not in target.log_text()
    assert "RecursionError" not in target.log_text()


# 3. X-Forwarded-For gives no fresh budget; guessing cannot lock the operator out.

def test_rotating_x_forwarded_for_gets_no_fresh_budget(target: Target) -> None:
    statuses = []
    for number in range(6):
        with browser(target, "127.0.3.1", **{"X-Forwarded-For": f"198.51.100.{number}"}) as c:
            statuses.append(log_in(c, "nosuch_user", "wrong-password-1").status_code)
    assert statuses == [401] * 5 + [429]


def test_guesses_from_many_addresses_leave_the_operators_own_address_open(
        target: Target) -> None:
    for guess in range(55):  # 11 addresses, 5 guesses each, over every replica
        address, replica = f"127.0.5.{guess // 5 + 1}", target.replicas[guess % len(
            target.replicas)]
        with browser(target, address, base=replica) as guesser:
            status = log_in(guesser, target.operator, f"guess-{guess:04d}").status_code
        assert status == (401 if guess < 50 else 429), (guess, status)
    with browser(target, "127.0.6.1") as newcomer:  # the ceiling holds for new addresses
        assert log_in(newcomer, target.operator, OPERATOR_PASSWORD).status_code == 429
    with browser(target, HOME, base=target.replicas[-1]) as home:
        assert log_in(home, target.operator, OPERATOR_PASSWORD).status_code == 303
        assert home.get("/console/funnel").status_code == 200


# 4. Bounded bodies, no echo.

def test_a_huge_api_body_is_413_and_a_422_echoes_nothing(target: Target) -> None:
    auth = {"Authorization": f"Bearer {target.api_key}", "Content-Type": "application/json"}
    huge = b"[" + b'{"platform_user_id": "x", "phone": "13800000000"},' * 600_000 + b"{}]"
    assert len(huge) > 30_000_000
    answer = httpx.post(f"{target.url}/api/platform-users", content=huge, headers=auth,
                        timeout=60)
    assert answer.status_code == 413 and len(answer.content) < 500
    marker = "ECHO" * 1000
    answer = httpx.post(f"{target.url}/api/platform-users", headers=auth, timeout=30,
                        content=f'[{{"platform_user_id": "{marker}", "phone": 5}}]')
    assert answer.status_code == 422 and "ECHO" not in answer.text


# 5. Logout means logout.

def test_a_copied_cookie_dies_with_the_logout(target: Target) -> None:
    with browser(target, HOME) as operator:
        assert log_in(operator, target.operator, OPERATOR_PASSWORD).status_code == 303
        copied = operator.cookies["sopbot_console"]
        page = operator.get("/console/funnel")
        token = CSRF.search(page.text)
        assert token
        with browser(target, "127.0.7.2", base=target.replicas[-1]) as thief:
            thief.cookies.set("sopbot_console", copied, path="/console")
            assert thief.get("/console/funnel").status_code == 200
            assert operator.post("/console/logout",
                                 data={"csrf_token": token.group(1)}).status_code == 303
            assert thief.get("/console/funnel").status_code == 303


def test_a_console_form_without_its_csrf_token_changes_nothing(target: Target) -> None:
    with browser(target, HOME) as operator:
        assert log_in(operator, target.operator, OPERATOR_PASSWORD).status_code == 303
        answer = operator.post("/console/reviews/decide", data={
            "ids": str(pending_review(target)), "action": "approve"})
        assert answer.status_code == 403
    assert rows(target, "SELECT status FROM verification WHERE id = :id",
                id=pending_review(target)) == [("pending",)]


# 6. The member-facing pages.

def test_the_verification_page_is_not_framed_sniffed_or_posted_cross_site(
        target: Target) -> None:
    page = httpx.get(f"{target.url}{target.link}", timeout=30)
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "unsafe" not in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    before = rows(target, "SELECT count(*) FROM verification")
    cross = httpx.post(f"{target.url}{target.link}", timeout=30,
                       headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
                       data={"phone": "13700000000", "identity_type": "consumer",
                             "region": "广东"})
    assert cross.status_code == 403
    assert rows(target, "SELECT count(*) FROM verification") == before


# 7. Callback freshness, and the attacks found refused before.

def test_a_validly_signed_old_callback_is_refused_and_not_stored(target: Target) -> None:
    add = payloads.external_contact(corp_id=target.env["WECOM_CORP_ID"],
                                    external_user_id="wmReplayedAdd")
    month_ago = str(int(time.time()) - 30 * 86400)
    params, body = target.crypto.encrypt_callback(add, timestamp=month_ago)
    answer = httpx.post(f"{target.url}/wecom/callback", params=params, content=body, timeout=30)
    assert answer.status_code == 403
    stored = rows(target, "SELECT count(*) FROM inbox_event WHERE payload LIKE :who",
                  who="%wmReplayedAdd%")
    assert stored == [(0,)]


def test_forged_and_bomb_callbacks_are_refused(target: Target) -> None:
    add = payloads.external_contact(corp_id=target.env["WECOM_CORP_ID"],
                                    external_user_id="wmForged")
    params, body = target.crypto.encrypt_callback(add)
    forged = httpx.post(f"{target.url}/wecom/callback", timeout=30, content=body,
                        params={**params, "msg_signature": "f" * 40})
    assert forged.status_code == 403
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>')
    answer = httpx.post(f"{target.url}/wecom/callback", params=params, content=bomb,
                        timeout=30)
    assert answer.status_code == 400
    assert rows(target, "SELECT count(*) FROM inbox_event WHERE payload LIKE :who",
                who="%wmForged%") == [(0,)]


# Last: what the logs of all of the above hold.

def test_zz_the_logs_hold_no_secret_and_no_whole_phone_number(target: Target) -> None:
    log = target.log_text()
    assert log, "the services logged nothing"
    for name in ("WECOM_CALLBACK_TOKEN", "WECOM_CALLBACK_AES_KEY", "SOPBOT_SECRET_KEY",
                 "SOPBOT_API_KEY", "SOPBOT_SIM_KEY", "WECOM_AGENT_SECRET"):
        if target.env.get(name):
            assert target.env[name] not in log, name
    assert OPERATOR_PASSWORD not in log
    assert not PHONE.findall(log), PHONE.findall(log)[:3]
    assert "Traceback" not in log

