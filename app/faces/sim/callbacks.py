"""The callback sender: WeCom's delivery behaviour towards the bot URL (§3, §8).

Each attempt POSTs the encrypted envelope with a fresh timestamp and nonce but the SAME
plaintext, to the bot URL, or to each of several in turn (comma-separated: replicas behind a
load balancer, which may send a retry to another one). An attempt fails when no HTTP 200
arrives within the timeout (5 s like WeCom; tests shorten it) or the status is not 200; three
attempts in total, back to back. Every attempt and the decrypted passive reply, if the bot
sent one, are kept for GET /sim/callbacks.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from typing import Any

import httpx

from app.engine.logs import get_logger
from app.engine.wecom.crypto import CryptoError, WeComCrypto
from app.faces.sim.clock import SimClock
from app.faces.sim.config import SimSettings
from app.faces.sim.state import PendingCallback

log = get_logger("sopbot.sim.callbacks")
ATTEMPTS = 3
VERIFY_DEADLINE_S = 1.0
# Callbacks on the wire at once. Beyond the HTTP pool's size, requests would queue inside
# httpcore, whose queue costs O(queued) per request: a burst of 1,000 friend adds then spent
# most of the simulator's CPU there, and its lateness was charged to the bot.
IN_FLIGHT = 32


class CallbackSender:
    def __init__(self, settings: SimSettings, clock: SimClock) -> None:
        self.crypto = WeComCrypto(settings.callback_token.get_secret_value(),
                                  settings.callback_aes_key.get_secret_value(), settings.corp_id)
        self.clock, self.bot_url = clock, settings.bot_url
        self.timeout_s = settings.callback_timeout_s
        # trust_env=False: a proxy from the environment must never see the bot's traffic.
        # httpx's own timeouts as well as wait_for's: an attempt to a replica killed
        # mid-exchange once outlived its wait_for by far (bench/replica_death.py), and a bot
        # that never answers must cost an attempt, not the callback.
        limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
        self.client = httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(self.timeout_s),
                                        limits=limits)
        self._gate = asyncio.Semaphore(IN_FLIGHT)
        self._turn = itertools.count()
        self.records: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    async def send(self, pending: PendingCallback) -> dict[str, Any]:
        """Deliver now and return the record with the outcome."""
        record = self._open(pending)
        await self._deliver(record, pending)
        return record

    def send_background(self, pending: PendingCallback) -> dict[str, Any]:
        """Start delivering; the returned record fills in as attempts happen."""
        record = self._open(pending)
        task = asyncio.create_task(self._deliver(record, pending))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return record

    async def drain(self) -> None:
        """Wait for background deliveries (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.client.aclose()

    def _open(self, pending: PendingCallback) -> dict[str, Any]:
        record = {"id": len(self.records) + 1, "kind": pending.kind,
                  "plaintext": pending.plaintext, "created_at": self.clock.now(),
                  "attempts": [], "outcome": "pending", "reply": None, "reply_error": None}
        self.records.append(record)
        return record

    async def _deliver(self, record: dict[str, Any], pending: PendingCallback) -> None:
        turn = next(self._turn)  # this callback's first URL; its retries go to the next ones
        for number in range(1, ATTEMPTS + 1):
            if await self._attempt(record, pending, number, self._url(turn + number - 1)):
                record["outcome"] = "delivered"
                return
        record["outcome"] = "failed"
        log.warning("sim_callback_failed", kind=record["kind"], id=record["id"])

    async def _attempt(self, record: dict[str, Any], pending: PendingCallback,
                       number: int, url: str) -> bool:
        agent = None if pending.agent_id is None else str(pending.agent_id)
        async with self._gate:  # signed once on its way out: the timestamp is fresh
            params, body = self.crypto.encrypt_callback(
                pending.plaintext, timestamp=_wall_stamp(), agent_id=agent)
            attempt: dict[str, Any] = {"n": number, "timestamp": params["timestamp"],
                                       "nonce": params["nonce"], "status": None, "error": None}
            record["attempts"].append(attempt)
            await self._post(attempt, record, url, params, body)
        return attempt["status"] == 200

    async def _post(self, attempt: dict[str, Any], record: dict[str, Any], url: str,
                    params: dict[str, str], body: bytes) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempt["sent_at"] = self.clock.now()  # when it left, on the clock requests are timed by
        try:
            # wait_for bounds the whole exchange, as WeCom's 5 s deadline does.
            response = await asyncio.wait_for(self.client.post(
                url, params=params, content=body,
                headers={"Content-Type": "text/xml"}), self.timeout_s)
        except (TimeoutError, httpx.TimeoutException):
            attempt["error"] = "timeout"
        except httpx.HTTPError as exc:
            attempt["error"] = type(exc).__name__
        else:
            attempt["status"] = response.status_code
            if response.status_code == 200:
                self._read_reply(record, response.content)
        attempt["elapsed_s"] = round(loop.time() - started, 3)

    def _read_reply(self, record: dict[str, Any], content: bytes) -> None:
        """An encrypted passive reply is decrypted; an empty body or "success" is no reply."""
        text = content.strip()
        if not text or text == b"success":
            return
        try:
            record["reply"] = self.crypto.decrypt_reply(text)
        except CryptoError as exc:
            record["reply_error"] = f"{type(exc).__name__}: {exc}"

    def _urls(self) -> list[str]:
        return [url.strip() for url in self.bot_url.split(",") if url.strip()]

    def _url(self, turn: int) -> str:
        """The bot URL of a turn: each of them in turn."""
        urls = self._urls()
        return urls[turn % len(urls)]

    async def verify_url(self) -> dict[str, Any]:
        """The GET check WeCom makes when an admin saves the URL: echo within 1 s."""
        echo = str(secrets.randbelow(10**19)).zfill(19)
        stamp, nonce, encrypt = _wall_stamp(), secrets.token_hex(5), self.crypto.encrypt(echo)
        query = {"msg_signature": self.crypto.signature(stamp, nonce, encrypt),
                 "timestamp": stamp, "nonce": nonce, "echostr": encrypt}
        try:
            response = await asyncio.wait_for(self.client.get(self._urls()[0], params=query),
                                              VERIFY_DEADLINE_S)
        except (TimeoutError, httpx.HTTPError) as exc:
            return {"ok": False, "error": type(exc).__name__}
        ok = response.status_code == 200 and response.text == echo
        return {"ok": ok, "status": response.status_code, "echo_matches": response.text == echo}


def _wall_stamp() -> str:
    """The URL's timestamp: the real time, whatever the simulated clock says (tests and the
    demo move it days ahead). It belongs to the transport, which the bot checks for freshness
    against its own clock, as it would WeCom's."""
    return str(int(time.time()))
