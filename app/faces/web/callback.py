"""GET /wecom/callback (URL verification) and POST /wecom/callback (events into the inbox).

The POST path verifies, decrypts, parses, commits the inbox row and answers; it does no business
work. Only callbacks that accept a passive reply (member → app messages) wait, briefly, for their
handler so the reply can ride on the answer.
"""

from __future__ import annotations

import os
import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from structlog.contextvars import bound_contextvars

from app.engine.inbox.models import PENDING
from app.engine.logs import get_logger
from app.engine.wecom.crypto import CryptoError, ReceiveIdError, SignatureError
from app.engine.wecom.events import Event
from app.engine.wecom.parsing import event_from_xml
from app.engine.wecom.xmlutil import XmlError, parse_xml
from app.faces.web.runtime import Runtime

log = get_logger("sopbot.callback")
router = APIRouter()
SIGNED_PARAMS = ("msg_signature", "timestamp", "nonce")


class Rejected(Exception):
    """A callback we refuse: answered with `status` and a short reason, nothing stored."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def new_callback_id() -> str:
    return os.urandom(8).hex()


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _signed_params(request: Request, *extra: str) -> dict[str, str]:
    """The signed query parameters, refused when one is missing or the timestamp is stale."""
    params = {name: request.query_params.get(name, "") for name in (*SIGNED_PARAMS, *extra)}
    missing = [name for name, value in params.items() if not value]
    if missing:
        raise Rejected(400, f"missing query parameter {', '.join(missing)}")
    _check_fresh(params["timestamp"], _runtime(request).settings.callback_max_age_s)
    return params


def _check_fresh(timestamp: str, max_age_s: int) -> None:
    """A replay of a callback captured long ago carries its old, signed timestamp: refused,
    whatever its signature (the inbox forgets keys after its retention)."""
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Rejected(400, "timestamp is not a number of seconds")
    if abs(time.time() - int(timestamp)) > max_age_s:
        raise Rejected(403, "timestamp outside the accepted window")


def _crypto_rejection(exc: CryptoError) -> Rejected:
    if isinstance(exc, SignatureError | ReceiveIdError):
        return Rejected(403, "signature or receive id does not match")
    return Rejected(400, "cannot decrypt")


def _reject(exc: Rejected, runtime: Runtime | None = None) -> Response:
    log.warning("callback_rejected", status=exc.status, reason=exc.reason)
    if runtime is not None:
        runtime.metrics.callbacks.labels("-", f"rejected_{exc.status}").inc()
    return PlainTextResponse(exc.reason, status_code=exc.status)


@router.get("/wecom/callback")
async def verify_url(request: Request) -> Response:
    """WeCom checks the URL when an admin saves it: answer the bare decrypted echo string."""
    with bound_contextvars(callback_id=new_callback_id()):
        try:
            params = _signed_params(request, "echostr")
            echo = _runtime(request).crypto.verify_url(
                params["msg_signature"], params["timestamp"], params["nonce"], params["echostr"])
        except CryptoError as exc:
            return _reject(_crypto_rejection(exc))
        except Rejected as exc:
            return _reject(exc)
        log.info("url_verified")
        return PlainTextResponse(echo)


@router.post("/wecom/callback")
async def receive(request: Request) -> Response:
    """Store the callback exactly once, then answer; handling happens off the request."""
    callback_id = new_callback_id()
    with bound_contextvars(callback_id=callback_id):
        runtime = _runtime(request)
        try:
            params = _signed_params(request)
            body = await read_body(request, runtime.settings.max_body_bytes)
            plaintext = _open(runtime, params, body)
            payload = plaintext.decode("utf-8")
            event = event_from_xml(payload)
        except (XmlError, UnicodeDecodeError):
            return _reject(Rejected(400, "malformed payload"), runtime)
        except CryptoError as exc:
            return _reject(_crypto_rejection(exc), runtime)
        except Rejected as exc:
            return _reject(exc, runtime)
        reply = await _store_and_answer(runtime, event, payload, callback_id)
        if reply is None:
            return Response(status_code=200)
        return Response(runtime.crypto.encrypt_reply(reply, params["nonce"]),
                        media_type="application/xml")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) anything over `limit` bytes without reading it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Rejected(413, "body too large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, "body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _open(runtime: Runtime, params: dict[str, str], body: bytes) -> bytes:
    envelope = parse_xml(body)
    encrypt = envelope.get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt:
        raise Rejected(400, "no Encrypt element")
    return runtime.crypto.decrypt_message(
        params["msg_signature"], params["timestamp"], params["nonce"], encrypt)


async def _store_and_answer(runtime: Runtime, event: Event, payload: str,
                            callback_id: str) -> str | None:
    accepted = await runtime.writer.accept(event, payload, callback_id)
    log.info("callback_duplicate" if accepted.duplicate else "callback_stored",
             inbox_id=accepted.inbox_id, kind=event.kind, status=accepted.status)
    runtime.metrics.callbacks.labels(
        event.kind, "duplicate" if accepted.duplicate else "stored").inc()
    if accepted.status != PENDING:
        return accepted.reply  # an earlier delivery was handled: answer what it answered
    if event.accepts_reply:
        return await runtime.worker.process_now(accepted.inbox_id,
                                                 runtime.settings.reply_wait_ms / 1000)
    runtime.worker.wake()
    return None
