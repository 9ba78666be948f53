"""Client errors at POST/GET /wecom/callback are short 4xx answers with one short log line:
deeply nested XML (unsigned envelope, or signed and encrypted payload) and other odd input
never reach the 500 handler, never log a traceback, and store nothing."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import structlog

from app.engine.config import Settings
from app.engine.inbox.models import InboxEvent
from tests.conftest import CORP_ID, RunningApp, make_settings, rows_of, serve_app
from tests.fakes import payloads

# Big enough for a 100,000-deep document (700 KB), so the parser, not the body limit, refuses it.
BODY_LIMIT = 4 * 1024 * 1024


def unsigned() -> dict[str, str]:
    """Query parameters of a callback nobody signed (a current timestamp, a made-up signature)."""
    return {"msg_signature": "0" * 40, "timestamp": str(int(time.time())), "nonce": "n0nce"}


def nested(depth: int) -> str:
    return "<xml>" + "<a>" * depth + "x" + "</a>" * depth + "</xml>"


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url, max_body_bytes=BODY_LIMIT)


@pytest.fixture
async def running(settings: Settings) -> AsyncIterator[RunningApp]:
    async with serve_app(settings) as app:
        yield app


@pytest.fixture
def log_output(capsys: pytest.CaptureFixture[str],
               monkeypatch: pytest.MonkeyPatch) -> Callable[[], str]:
    """A function returning what the process logged since it was last called.

    structlog writes to whatever sys.stderr is (capsys's); the standard library's handler,
    which uvicorn's own "Exception in ASGI application" goes through, is pointed there too."""
    for handler in logging.getLogger().handlers:  # pytest's own capture handlers left alone
        if isinstance(handler.formatter, structlog.stdlib.ProcessorFormatter):
            monkeypatch.setattr(handler, "stream", sys.stderr)
    return lambda: capsys.readouterr().err


async def logged_by(request, log_output: Callable[[], str],  # type: ignore[no-untyped-def]
                    ) -> tuple[httpx.Response, str]:
    """Send one request; what the process logged while handling it."""
    log_output()  # start-up and earlier requests
    response = await request()
    # The server runs on this event loop: let it finish the request (uvicorn logs an escaped
    # exception after the response has gone).
    await asyncio.sleep(0.05)
    return response, log_output()


def assert_short_and_clean(output: str) -> None:
    assert "Traceback" not in output and "RecursionError" not in output
    assert len(output) < 2048, output[:500]


def rejections(output: str) -> list[dict]:  # type: ignore[type-arg]
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == "callback_rejected"]


@pytest.mark.parametrize("depth", [500, 100_000])
async def test_deep_unsigned_envelope_is_400(running: RunningApp, log_output, depth: int) -> None:
    body = nested(depth).encode()
    if depth == 500:
        assert len(body) < 4 * 1024  # the 3.5 KB request of the finding
    response, output = await logged_by(
        lambda: running.client.post("/wecom/callback", params=unsigned(), content=body), log_output)
    assert (response.status_code, response.text) == (400, "malformed payload")
    assert_short_and_clean(output)
    assert [(r["status"], r["reason"]) for r in rejections(output)] == [(400, "malformed payload")]
    assert await rows_of(running.runtime.db, InboxEvent) == []


@pytest.mark.parametrize("depth", [5_000, 100_000])
async def test_deep_signed_payload_is_400(running: RunningApp, log_output, depth: int) -> None:
    response, output = await logged_by(lambda: running.post_callback(nested(depth)), log_output)
    assert (response.status_code, response.text) == (400, "malformed payload")
    assert_short_and_clean(output)
    assert len(rejections(output)) == 1
    assert await rows_of(running.runtime.db, InboxEvent) == []


def _signed(app: RunningApp, plaintext: str | bytes, **params: str):  # type: ignore[no-untyped-def]
    signed, body = app.crypto.encrypt_callback(plaintext)  # type: ignore[arg-type]
    return lambda: app.client.post("/wecom/callback", params={**signed, **params}, content=body)


def _text_message(**fields: str) -> str:
    base = {"ToUserName": CORP_ID, "FromUserName": "op1", "CreateTime": "1700000000",
            "MsgType": "text", "Content": "hi", "MsgId": "1", "AgentID": "1000002"}
    base.update(fields)
    return "<xml>" + "".join(f"<{k}>{v}</{k}>" for k, v in base.items()) + "</xml>"


# Each: a request maker from the running app, and the statuses it may get. None of these may
# reach the 500 handler. Payloads of the wrong shape are stored as unknown events (200).
ODD_INPUTS = {
    "query not UTF-8": (lambda app: lambda: app.client.post(
        "/wecom/callback?msg_signature=%ff%fe&timestamp=%80&nonce=%c3%28", content=b"<xml/>"),
        {400, 403}),
    "huge timestamp": (lambda app: _signed(app, payloads.external_contact(corp_id=CORP_ID),
                                           timestamp="9" * 5000), {400, 403}),
    "non-ASCII signature": (lambda app: _signed(app, payloads.external_contact(corp_id=CORP_ID),
                                                msg_signature="签名" * 20), {403}),
    "payload not UTF-8": (lambda app: _signed(app, b"<xml>\xff\xfe</xml>"), {400}),
    "Encrypt is an element": (lambda app: lambda: app.client.post(
        "/wecom/callback", params=unsigned(), content=b"<xml><Encrypt><a>1</a></Encrypt></xml>"),
        {400}),
    "CreateTime is an element": (lambda app: _signed(app, _text_message(CreateTime="<a>1</a>")),
                                 {200}),
    "CreateTime of 5000 digits": (lambda app: _signed(app, _text_message(CreateTime="9" * 5000)),
                                  {200}),
    "AgentID past 64 bits": (lambda app: _signed(app, _text_message(AgentID="9" * 30)), {200}),
    "MsgType is a list": (lambda app: _signed(app, "<xml><MsgType><Item>a</Item></MsgType></xml>"),
                          {200}),
    "URL check not UTF-8": (lambda app: lambda: app.client.get(
        "/wecom/callback?msg_signature=%ff&timestamp=%ff&nonce=%ff&echostr=%ff"), {400, 403}),
}


@pytest.mark.parametrize("case", ODD_INPUTS)
async def test_odd_client_input_never_logs_a_traceback(running: RunningApp, log_output,
                                                       case: str) -> None:
    make, statuses = ODD_INPUTS[case]
    response, output = await logged_by(make(running), log_output)
    assert response.status_code in statuses
    assert "internal error" not in response.text
    assert "Traceback" not in output and "request_failed" not in output
