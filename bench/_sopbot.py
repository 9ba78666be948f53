"""The servers of bench/callback_throughput.py and the sopbot side of the measurement.

The benchmark credentials and callbacks, one uvicorn subprocess per server (bench/_servers.py),
its environment, and the inbox checks made straight on the SQLite file: rows per status, the
drain (worker running) or the inline-handled texts (worker off).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from app.engine.wecom.crypto import WeComCrypto
from bench._load import CLIENT_ERRORS, Connection, http_request
from tests.fakes import payloads

REPO = Path(__file__).resolve().parent.parent

# Benchmark-only credentials (not any corp's); the server gets the same through its environment.
CORP_ID = "wwbenchcorp0000001"
TOKEN = "benchCallbackToken"
AES_KEY = "kW3mYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2"
AGENT_ID = 1000002

SERVER_CORE = 0
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
# Worker off: after the load, how long the last inline-handled texts may take to reach `done`.
INLINE_SETTLE_S = 30.0


# --- payloads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Callback:
    """One encrypted callback: the signed query string, the XML envelope, and whether it is a
    member text (accepts a passive reply, so the request handles it inline)."""

    query: str
    body: bytes
    text: bool

    def request(self, path: str) -> bytes:
        return http_request("POST", f"{path}?{self.query}", self.body)


def make_callbacks(count: int, text_share: float, seed: int) -> list[Callback]:
    """`count` distinct callbacks: mostly friend adds, `text_share` of member text messages.

    The texts are not commands ("你好"), so their passive-reply wait is one inline unit of work
    with no handler; a /help would add the reply's encryption on top.
    """
    rng = random.Random(seed)
    crypto = WeComCrypto(TOKEN, AES_KEY, CORP_ID)
    callbacks = []
    for i in range(count):
        text = rng.random() < text_share
        if text:
            plaintext = payloads.text_message("你好", from_user=f"member{i:06d}",
                                              agent_id=AGENT_ID, corp_id=CORP_ID)
        else:
            # Fresh ExternalUserID and WelcomeCode per call: a distinct dedupe key per event.
            plaintext = payloads.external_contact(user_id=f"staff{i % 20:02d}", corp_id=CORP_ID)
        params, body = crypto.encrypt_callback(plaintext)
        callbacks.append(Callback(urlencode(params), body, text))
    return callbacks


# --- server processes -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One uvicorn subprocess (bench/_servers.py) with its log file; always stopped by `stop`."""

    def __init__(self, kind: str, log_path: Path, env: dict[str, str], pin: bool) -> None:
        self.kind, self.port, self.log_path = kind, free_port(), log_path
        taskset = ["taskset", "-c", str(SERVER_CORE)] if pin else []
        command = [*taskset, sys.executable, "-m", "bench._servers", kind,
                   "--port", str(self.port)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)

    async def wait_ready(self, probe: bytes) -> None:
        """Until the probe request answers 200 (the lifespan, migrations included, is done)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited at start:\n{self.log_tail()}")
            if await self._answers(probe):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.kind} server not ready in {START_TIMEOUT_S:.0f} s")

    async def _answers(self, probe: bytes) -> bool:
        try:
            conn = await Connection.connect(self.port)
            status, _ = await conn.exchange(probe)
            conn.close()
        except CLIENT_ERRORS:
            return False
        return status == 200

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process so far (from /proc; 0 where unavailable)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down gracefully: lifespan end, worker cancelled), then kill."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def log_tail(self, count: int = 20) -> str:
        return "\n".join(self.log_lines()[-count:])


def _die_with_parent() -> None:
    # `stop` runs in a finally, but a SIGKILLed benchmark runs no finally: let Linux end the
    # server then (PR_SET_PDEATHSIG survives the exec of taskset and python).
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def server_env(db_path: Path, log_level: str, worker: bool = True) -> dict[str, str]:
    """The environment of a server: ours, never the caller's SOPBOT_*/WECOM_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPBOT_", "WECOM_"))}
    env.update({
        "SOPBOT_DATABASE_URL": f"sqlite:///{db_path}",
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_CALLBACK_TOKEN": TOKEN,
        "WECOM_CALLBACK_AES_KEY": AES_KEY,
        "SOPBOT_SECRET_KEY": "bench-secret-key-0123456789",
        "WECOM_AGENT_ID": str(AGENT_ID),
        "SOPBOT_OPERATORS": "operator1",
        "SOPBOT_FLOWS": str(REPO / "sop_flows"),
        "SOPBOT_KEYWORDS": str(REPO / "keywords.yaml"),
        "SOPBOT_LOG_LEVEL": log_level,
        "SOPBOT_LOG_FORMAT": "json",
        "SOPBOT_INBOX_WORKER": "true" if worker else "false",
        # Delivery is measured by bench/fanout.py and bench/welcome_burst.py; here WeCom is not
        # reachable, so a sender would only retry the welcomes the friend adds queue.
        "SOPBOT_OUTBOX_SENDER": "false",
    })
    return env


# --- the inbox --------------------------------------------------------------------------------


def inbox_counts(db_path: Path) -> Counter[str]:
    """Rows per status, read straight from the SQLite file (WAL: readers never block it)."""
    with contextlib.closing(sqlite3.connect(db_path, timeout=10)) as conn:
        rows = conn.execute("SELECT status, COUNT(*) FROM inbox_event GROUP BY status").fetchall()
    return Counter(dict(rows))


@dataclass
class Inbox:
    """The inbox of one sopbot run: backlog when the load ended, drain time, final counts.

    With the worker running every row must end `done`; without it only the member texts,
    which the request handles inline, and the rest stays `pending` (nobody drains it).
    """

    sent: int
    expect_done: int
    worker: bool = True
    pending_at_end_of_load: int = 0
    drain_s: float | None = None  # None: rows still pending at the timeout (or server died)
    stored: int = 0
    done: int = 0
    other: dict[str, int] = field(default_factory=dict)
    log_lines: int = 0
    log_sample: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.stored == self.sent and self.done == self.expect_done


async def wait_until(db_path: Path, server: Server, ready: Callable[[Counter[str]], bool],
                     timeout: float) -> float | None:
    """Poll the file until `ready(counts)`; seconds taken, or None at the timeout or the
    server's death."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout and server.process.poll() is None:
        if ready(inbox_counts(db_path)):
            return time.perf_counter() - start
        await asyncio.sleep(0.05)
    return None


async def settle(db_path: Path, server: Server, inbox: Inbox, drain_timeout: float) -> None:
    """After the load: note the backlog, then wait for the drain (worker running) or only for
    the last inline-handled texts (worker off; not a drain, so not timed)."""
    inbox.pending_at_end_of_load = inbox_counts(db_path)["pending"]
    if inbox.worker:
        inbox.drain_s = await wait_until(db_path, server, lambda c: c["pending"] == 0,
                                         drain_timeout)
    else:
        await wait_until(db_path, server, lambda c: c["done"] >= inbox.expect_done,
                         INLINE_SETTLE_S)


def final_counts(db_path: Path, server: Server, inbox: Inbox) -> None:
    counts = inbox_counts(db_path)
    inbox.stored, inbox.done = sum(counts.values()), counts.pop("done", 0)
    inbox.other = dict(counts)
    lines = server.log_lines()
    inbox.log_lines, inbox.log_sample = len(lines), [line[:200] for line in lines[:3]]
