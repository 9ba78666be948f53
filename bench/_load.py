"""The load generator of bench/callback_throughput.py: raw keep-alive HTTP/1.1 sockets.

`saturate` is the closed loop (N connections, one request in flight on each, as fast as the
server answers); `fixed_rate` the open loop (request i due at start + i/rate, latency from the
due time). Both fill in a `Phase`: latencies, errors, wall time and the CPU of both processes.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

RATE_MAX_CONNECTIONS = 64  # WeCom opens as many as it needs; the rate test must not queue on us
# uvicorn closes a keep-alive connection idle for 5 s (timeout_keep_alive); a request written
# just then is lost (0 bytes read), so the pool never reuses a connection idle for this long.
IDLE_LIMIT_S = 4.0
CLIENT_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


class CpuMeter(Protocol):
    """What a phase needs of the server it loads: its CPU seconds so far."""

    def cpu_seconds(self) -> float: ...


def http_request(method: str, target: str, body: bytes = b"") -> bytes:
    head = (f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


class Connection:
    """One keep-alive connection, one request in flight; just enough HTTP/1.1 for our servers.

    httpx would spend more CPU per request than the bare server does, and the generator must
    never be the bottleneck of the yardstick.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.open = True
        self.last_used = time.monotonic()

    @classmethod
    async def connect(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.transport.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send one request; return the response's status and body."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        fields = head.lower()
        if b"transfer-encoding: chunked" in fields:
            raise ValueError("chunked response: not expected from these endpoints")
        body = await self.reader.readexactly(_content_length(fields))
        if b"\r\nconnection: close" in fields:
            self.close()
        self.last_used = time.monotonic()
        return status, body

    def fresh(self) -> bool:
        """Safe to reuse: open, not closed by the server, idle for less than IDLE_LIMIT_S."""
        return (self.open and not self.reader.at_eof()
                and time.monotonic() - self.last_used < IDLE_LIMIT_S)

    def close(self) -> None:
        self.open = False
        self.writer.close()


def _content_length(head: bytes) -> int:
    start = head.find(b"\r\ncontent-length:")
    if start < 0:
        return 0
    end = head.find(b"\r\n", start + 2)
    return int(head[start + 17:end])


@dataclass
class Phase:
    """What one load phase saw: latencies of every answer, errors, time and CPU spent."""

    name: str
    sent: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, every completed request
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)  # the first few errors, to print
    elapsed: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0

    def record(self, latency: float, status: int, body: bytes) -> None:
        self.latencies.append(latency)
        if status != 200:
            self.fail(f"HTTP {status}", body.decode("utf-8", "replace")[:120])

    def fail(self, kind: str, detail: str = "") -> None:
        self.errors[kind] += 1
        if len(self.samples) < 5:
            self.samples.append(f"{kind} {detail}".strip())

    @property
    def ok(self) -> int:
        return len(self.latencies) - sum(v for k, v in self.errors.items() if k.startswith("HTTP"))

    @property
    def throughput(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile of all completed requests, in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] * 1000


async def _timed(phase: Phase, server: CpuMeter, work: Any, timeout: float) -> None:
    """Run `work`, filling in wall time and the CPU both processes spent meanwhile."""
    cpu, server_cpu, start = time.process_time(), server.cpu_seconds(), time.perf_counter()
    try:
        await asyncio.wait_for(work, timeout)
    except TimeoutError:
        phase.fail("phase timeout", f"after {timeout:.0f} s")
    phase.elapsed = time.perf_counter() - start
    phase.client_cpu = time.process_time() - cpu
    phase.server_cpu = server.cpu_seconds() - server_cpu


# --- closed loop ------------------------------------------------------------------------------


async def saturate(port: int, requests: list[bytes], concurrency: int, timeout: float,
                   name: str, server: CpuMeter) -> Phase:
    """Send every request as fast as `concurrency` connections allow (closed loop)."""
    phase = Phase(name, sent=len(requests))
    shared = iter(requests)  # one iterator for all workers: each request is sent once
    workers = [_saturation_worker(port, shared, phase) for _ in range(concurrency)]
    await _timed(phase, server, asyncio.gather(*workers), timeout)
    return phase


async def _saturation_worker(port: int, requests: Iterator[bytes], phase: Phase) -> None:
    conn: Connection | None = None
    for request in requests:
        try:
            if conn is None or not conn.open:
                conn = await Connection.connect(port)
            start = time.perf_counter()
            status, body = await conn.exchange(request)
            phase.record(time.perf_counter() - start, status, body)
        except CLIENT_ERRORS as exc:
            phase.fail(type(exc).__name__, str(exc)[:120])
            if conn is not None:
                conn.close()


# --- open loop --------------------------------------------------------------------------------


class Pool:
    """Idle keep-alive connections for the open-loop test; opens more (up to a cap) on demand."""

    def __init__(self, port: int, limit: int) -> None:
        self.port, self.limit, self.opened = port, limit, 0
        self.idle: asyncio.LifoQueue[Connection] = asyncio.LifoQueue()

    async def fill(self, count: int) -> None:
        for _ in range(count):
            self.opened += 1
            self.idle.put_nowait(await Connection.connect(self.port))

    async def acquire(self) -> Connection:
        """The most recently used idle connection that is still fresh, else a new one (up to the
        limit), else the next one released."""
        while not self.idle.empty():
            conn = self.idle.get_nowait()
            if conn.fresh():
                return conn
            conn.close()
            self.opened -= 1
        if self.opened < self.limit:
            self.opened += 1
            try:
                return await Connection.connect(self.port)
            except OSError:
                self.opened -= 1
                raise
        return await self.idle.get()

    def release(self, conn: Connection) -> None:
        if conn.open:
            self.idle.put_nowait(conn)
        else:
            self.opened -= 1

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().close()


async def fixed_rate(port: int, requests: list[bytes], rate: float, timeout: float,
                     server: CpuMeter) -> Phase:
    """Open loop: request i is due at start + i/rate whatever happened before it, and its
    latency counts from that due time, so a stalled server cannot hide its queue
    (no coordinated omission)."""
    phase = Phase(f"fixed {rate:g}/s", sent=len(requests))
    pool = Pool(port, RATE_MAX_CONNECTIONS)
    await pool.fill(16)
    try:
        await _timed(phase, server, _schedule(pool, requests, rate, phase), timeout)
    finally:
        pool.close()
    return phase


async def _schedule(pool: Pool, requests: list[bytes], rate: float, phase: Phase) -> None:
    start = time.perf_counter() + 0.05
    tasks = []
    for i, request in enumerate(requests):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_one_at(pool, request, due, phase)))
    await asyncio.gather(*tasks)


async def _one_at(pool: Pool, request: bytes, due: float, phase: Phase) -> None:
    try:
        conn = await pool.acquire()
    except OSError as exc:
        phase.fail(type(exc).__name__, str(exc)[:120])
        return
    try:
        status, body = await conn.exchange(request)
        phase.record(time.perf_counter() - due, status, body)
    except CLIENT_ERRORS as exc:
        phase.fail(type(exc).__name__, str(exc)[:120])
        conn.close()
    finally:
        pool.release(conn)
