"""Bad input: forged, malformed, oversized callbacks get a clear status and store nothing."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from app.engine.db import Database
from app.engine.inbox.models import InboxEvent
from app.engine.wecom.crypto import WeComCrypto
from tests.conftest import AES_KEY, CORP_ID, TOKEN, RunningApp
from tests.fakes import payloads


async def stored(app: RunningApp) -> int:
    async with app.runtime.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(InboxEvent)) or 0


def now(offset_s: int = 0) -> str:
    """A URL timestamp as WeCom signs it: seconds, now (or `offset_s` from now)."""
    return str(int(time.time()) + offset_s)


def no_trace(body: bytes) -> None:
    assert b"Traceback" not in body and b"File \"" not in body


async def test_bad_signature_is_403_and_stores_nothing(running: RunningApp) -> None:
    params, body = running.crypto.encrypt_callback(payloads.external_contact(corp_id=CORP_ID))
    params["msg_signature"] = "0" * 40
    response = await running.client.post("/wecom/callback", params=params, content=body)
    assert response.status_code == 403
    no_trace(response.content)
    assert await stored(running) == 0


async def test_callback_signed_with_another_token_is_403(running: RunningApp) -> None:
    forger = WeComCrypto("someoneElsesToken", AES_KEY, CORP_ID)
    params, body = forger.encrypt_callback(payloads.external_contact(corp_id=CORP_ID))
    response = await running.client.post("/wecom/callback", params=params, content=body)
    assert response.status_code == 403
    assert await stored(running) == 0


async def test_wrong_receive_id_is_403(running: RunningApp) -> None:
    other_corp = WeComCrypto(TOKEN, AES_KEY, "wwanothercorp")
    params, body = other_corp.encrypt_callback(payloads.external_contact(corp_id=CORP_ID))
    response = await running.client.post("/wecom/callback", params=params, content=body)
    assert response.status_code == 403
    assert await stored(running) == 0


@pytest.mark.parametrize("body", [
    b"", b"not xml at all", b"<xml><Encrypt>", b"<foo><Encrypt>abc</Encrypt></foo>",
    b"<xml><ToUserName>x</ToUserName></xml>",
    b'<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>',
])
async def test_malformed_envelope_is_400(running: RunningApp, body: bytes) -> None:
    params, _ = running.crypto.encrypt_callback(payloads.external_contact(corp_id=CORP_ID))
    response = await running.client.post("/wecom/callback", params=params, content=body)
    assert response.status_code == 400
    no_trace(response.content)
    assert await stored(running) == 0


async def test_correctly_signed_garbage_ciphertext_is_400(running: RunningApp) -> None:
    encrypt = "bm90IGEgdmFsaWQgY2lwaGVydGV4dA=="
    params = {"timestamp": now(), "nonce": "abc"}
    params["msg_signature"] = running.crypto.signature(params["timestamp"], params["nonce"],
                                                       encrypt)
    body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
    response = await running.client.post("/wecom/callback", params=params, content=body)
    assert response.status_code == 400
    assert await stored(running) == 0


async def test_decrypted_payload_that_is_not_xml_is_400(running: RunningApp) -> None:
    response = await running.post_callback("this is { not xml")
    assert response.status_code == 400
    assert await stored(running) == 0


async def test_missing_query_parameters_are_400(running: RunningApp) -> None:
    _, body = running.crypto.encrypt_callback(payloads.external_contact(corp_id=CORP_ID))
    response = await running.client.post("/wecom/callback", content=body)
    assert response.status_code == 400
    assert b"msg_signature" in response.content
    assert await stored(running) == 0


async def test_oversized_body_is_413_declared_or_streamed(running: RunningApp) -> None:
    params, _ = running.crypto.encrypt_callback(payloads.external_contact(corp_id=CORP_ID))
    filler = b"A" * (running.runtime.settings.max_body_bytes + 1)
    big = b"<xml><Encrypt>" + filler + b"</Encrypt></xml>"
    declared = await running.client.post("/wecom/callback", params=params, content=big)
    assert declared.status_code == 413

    async def chunks():  # no Content-Length: the server must count while reading
        for start in range(0, len(big), 8192):
            yield big[start:start + 8192]

    streamed = await running.client.post("/wecom/callback", params=params, content=chunks())
    assert streamed.status_code == 413
    assert await stored(running) == 0


async def test_get_url_verification_answers_the_bare_echo(running: RunningApp) -> None:
    echo = "7208561236284920317"
    encrypted = running.crypto.encrypt(echo)
    params = {"timestamp": now(), "nonce": "n0nce", "echostr": encrypted}
    params["msg_signature"] = running.crypto.signature(params["timestamp"], params["nonce"],
                                                       encrypted)
    response = await running.client.get("/wecom/callback", params=params)
    assert response.status_code == 200
    assert response.content == echo.encode()


async def test_get_with_literal_plus_turned_into_space_still_verifies(running: RunningApp) -> None:
    # Some proxies send '+' unescaped; form decoding turns it into a space.
    encrypted = next(e for e in (running.crypto.encrypt(str(i)) for i in range(500)) if "+" in e)
    echo = running.crypto.decrypt(encrypted).decode()
    stamp = now()
    signature = running.crypto.signature(stamp, "n", encrypted)
    url = (f"/wecom/callback?msg_signature={signature}&timestamp={stamp}&nonce=n"
           f"&echostr={encrypted.replace('/', '%2F').replace('=', '%3D')}")
    response = await running.client.get(url)
    assert response.status_code == 200
    assert response.text == echo


async def test_get_with_bad_signature_is_403(running: RunningApp) -> None:
    params = {"timestamp": now(), "nonce": "n", "echostr": running.crypto.encrypt("123"),
              "msg_signature": "f" * 40}
    response = await running.client.get("/wecom/callback", params=params)
    assert response.status_code == 403
    assert b"123" not in response.content


def break_database(app: RunningApp, tmp_path) -> None:
    """Point the app at a database file that cannot be opened."""
    broken = Database(f"sqlite:///{tmp_path}/missing-dir/none.db")
    app.runtime.db = app.runtime.writer.db = broken


async def test_database_failure_is_500_without_a_trace(running: RunningApp, tmp_path) -> None:
    working = running.runtime.db
    break_database(running, tmp_path)
    response = await running.post_callback(payloads.external_contact(corp_id=CORP_ID))
    assert response.status_code == 500
    assert response.content == b"internal error"
    running.runtime.db = running.runtime.writer.db = working
    async with working.reader() as session:
        assert await session.scalar(select(func.count()).select_from(InboxEvent)) == 0


async def test_healthz_reports_the_database(running: RunningApp, tmp_path) -> None:
    ok = await running.client.get("/healthz")
    assert ok.status_code == 200 and ok.json() == {"status": "ok", "database": "ok"}
    break_database(running, tmp_path)
    down = await running.client.get("/healthz")
    assert down.status_code == 503
    assert down.json()["database"] == "unreachable"


@pytest.mark.parametrize("offset_s", [-30 * 86400, -700, 700])
async def test_a_validly_signed_callback_out_of_its_time_window_is_403(
        running: RunningApp, offset_s: int) -> None:
    """A replay of a captured callback carries its old signed timestamp: refused, nothing
    stored; one a few minutes old (WeCom's retries) is taken."""
    add = payloads.external_contact(corp_id=CORP_ID, external_user_id="wmReplay")
    params, body = running.crypto.encrypt_callback(add, timestamp=now(offset_s))
    response = await running.client.post("/wecom/callback", params=params, content=body)
    assert response.status_code == 403
    assert b"timestamp" in response.content
    assert await stored(running) == 0
    params, body = running.crypto.encrypt_callback(add, timestamp=now(-300))
    assert (await running.client.post("/wecom/callback", params=params,
                                      content=body)).status_code == 200
    assert await stored(running) == 1


@pytest.mark.parametrize("stamp", ["-5", "1.5", "9" * 40, "１７００"])
async def test_a_timestamp_that_is_not_seconds_is_400(running: RunningApp, stamp: str) -> None:
    params, body = running.crypto.encrypt_callback(payloads.external_contact(corp_id=CORP_ID),
                                                   timestamp=stamp)
    response = await running.client.post("/wecom/callback", params=params, content=body)
    assert response.status_code == 400
    assert await stored(running) == 0


async def test_url_verification_out_of_its_time_window_is_403(running: RunningApp) -> None:
    encrypted = running.crypto.encrypt("7208561236284920317")
    params = {"timestamp": now(-86400), "nonce": "n0nce", "echostr": encrypted}
    params["msg_signature"] = running.crypto.signature(params["timestamp"], params["nonce"],
                                                       encrypted)
    response = await running.client.get("/wecom/callback", params=params)
    assert response.status_code == 403
    assert b"7208561236284920317" not in response.content
