"""Callback throughput: POST /wecom/callback against a bare FastAPI endpoint, side by side.

DESIGN.md §8: the callback path must reach at least half the throughput of a bare FastAPI
endpoint under the same server settings, and keep p99 under 50 ms at 300 callbacks/s on one core.

All servers are the same launcher (bench/_servers.py: uvicorn, 1 worker, uvloop, httptools,
access log off) pinned to core 0; this process, the load generator, runs on core 1. The
requests are valid encrypted, signed callbacks, all distinct, so every one becomes an inbox row;
the bare endpoint receives the very same bytes on POST /bare. Saturation measures bare FastAPI,
sopbot's callback path only (SOPBOT_INBOX_WORKER=false) and sopbot with its inbox worker; the
fixed-rate test runs with the worker. The outbox sender is off (delivery has its own benchmarks),
but the welcomes friend adds queue are stored, on the callback path. See bench/README.md.

    python bench/callback_throughput.py                     # default run
    python bench/callback_throughput.py --requests 5000     # quicker
    python bench/callback_throughput.py --rounds 3 --json   # alternate servers, report medians

Modules: bench/_load.py (the HTTP/1.1 load generator), bench/_sopbot.py (payloads, server
processes, inbox checks), bench/_report.py (table, JSON, verdicts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# The bench modules import app.* and tests.*: they need the path above.
from bench._load import Phase, fixed_rate, http_request, saturate  # noqa: E402
from bench._report import (  # noqa: E402
    Results,
    Round,
    exit_status,
    print_report,
    round_line,
    to_json,
)
from bench._sopbot import (  # noqa: E402
    SERVER_CORE,
    Callback,
    Inbox,
    Server,
    final_counts,
    make_callbacks,
    server_env,
    settle,
    wait_until,
)

GENERATOR_CORE = 1
CALLBACK_PATH = "/wecom/callback"
BARE_PATH = "/bare"

Load = Callable[[Server, Path], Awaitable[Phase]]


@dataclass
class Bench:
    """Everything a run needs, so the phases below stay short."""

    args: argparse.Namespace
    workdir: Path
    callbacks: list[Callback]
    pin: bool
    databases: int = 0  # sopbot servers started so far: each gets its own file

    def requests(self, path: str, start: int, count: int) -> list[bytes]:
        return [cb.request(path) for cb in self.callbacks[start:start + count]]

    def texts(self, count: int) -> int:
        """Member texts among the first `count` callbacks: the ones handled inline."""
        return sum(cb.text for cb in self.callbacks[:count])


# --- one server each --------------------------------------------------------------------------


async def run_bare(bench: Bench) -> Phase:
    args = bench.args
    # The same environment as sopbot's (log level included); the bare app never opens the file.
    env = server_env(bench.workdir / "bare-unused.db", args.log_level)
    server = Server("bare", bench.workdir / "bare.log", env, bench.pin)
    try:
        await server.wait_ready(http_request("POST", BARE_PATH))
        await saturate(server.port, bench.requests(BARE_PATH, 0, args.warmup), args.concurrency,
                       args.timeout, "warm-up", server)
        return await saturate(server.port, bench.requests(BARE_PATH, args.warmup, args.requests),
                              args.concurrency, args.timeout, "bare", server)
    finally:
        server.stop()


async def run_sopbot_saturation(bench: Bench, worker: bool) -> tuple[Phase, Inbox]:
    """Saturation on a fresh sopbot: callback path only (worker off) or with the worker."""
    args = bench.args
    warm, measured = (bench.requests(CALLBACK_PATH, 0, args.warmup),
                      bench.requests(CALLBACK_PATH, args.warmup, args.requests))
    name = "sopbot with worker" if worker else "sopbot callback path"

    async def load(server: Server, db_path: Path) -> Phase:
        await saturate(server.port, warm, args.concurrency, args.timeout, "warm-up", server)
        return await saturate(server.port, measured, args.concurrency, args.timeout, name,
                              server)

    return await _with_sopbot(bench, len(warm) + len(measured), worker, load)


async def run_sopbot_fixed_rate(bench: Bench) -> tuple[Phase, Inbox]:
    args = bench.args
    count = round(args.rate * args.rate_seconds)
    warm, measured = (bench.requests(CALLBACK_PATH, 0, args.warmup),
                      bench.requests(CALLBACK_PATH, args.warmup, count))

    async def load(server: Server, db_path: Path) -> Phase:
        await saturate(server.port, warm, args.concurrency, args.timeout, "warm-up", server)
        # Start from an empty backlog, so the test measures 300/s and not the warm-up's rows.
        await wait_until(db_path, server, lambda c: c["pending"] == 0, args.drain_timeout)
        return await fixed_rate(server.port, measured, args.rate,
                                args.rate_seconds + args.timeout, server)

    return await _with_sopbot(bench, len(warm) + len(measured), True, load)


async def _with_sopbot(bench: Bench, sent: int, worker: bool, load: Load) -> tuple[Phase, Inbox]:
    """A sopbot server on a fresh database: load it, settle (drain or inline texts), stop it,
    count the rows."""
    bench.databases += 1
    db_path = bench.workdir / f"sopbot-{bench.databases}.db"
    env = server_env(db_path, bench.args.log_level, worker)
    server = Server("sopbot", db_path.with_suffix(".log"), env, bench.pin)
    inbox = Inbox(sent, expect_done=sent if worker else bench.texts(sent), worker=worker)
    try:
        await server.wait_ready(http_request("GET", "/healthz"))
        phase = await load(server, db_path)
        await settle(db_path, server, inbox, bench.args.drain_timeout)
    finally:
        server.stop()
    final_counts(db_path, server, inbox)
    return phase, inbox


# --- rounds -----------------------------------------------------------------------------------


async def _saturation(bench: Bench, which: str) -> tuple[Phase, Inbox | None]:
    if which == "bare":
        return await run_bare(bench), None
    return await run_sopbot_saturation(bench, worker=which == "worker")


async def run_round(bench: Bench, reverse: bool) -> Round:
    """Bare, callback path only, with worker: in this order, or the reverse."""
    order = ["worker", "path", "bare"] if reverse else ["bare", "path", "worker"]
    runs = {which: await _saturation(bench, which) for which in order}
    return Round(runs["bare"][0], *runs["path"], *runs["worker"])  # type: ignore[arg-type]


async def run_rounds(bench: Bench) -> list[Round]:
    """The order alternates round by round so slow drift (thermal, neighbours on a shared
    machine) does not always favour the same server."""
    rounds = []
    for number in range(bench.args.rounds):
        rounds.append(await run_round(bench, reverse=number % 2 == 1))
        if bench.args.rounds > 1:
            print(round_line(number + 1, rounds[-1]), flush=True)
    return rounds


# --- main -------------------------------------------------------------------------------------


def pin_generator() -> bool:
    """Move this process to the generator core; False when there are not two cores to split."""
    available = os.sched_getaffinity(0)
    if not shutil.which("taskset") or not {SERVER_CORE, GENERATOR_CORE} <= available:
        return False
    os.sched_setaffinity(0, {GENERATOR_CORE})
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--requests", type=int, default=20000, help="callbacks per server per round (saturation)")
    add("--concurrency", type=int, default=32, help="keep-alive connections (saturation)")
    add("--rate", type=float, default=300.0, help="callbacks/s of the open-loop test")
    add("--rate-seconds", type=float, default=10.0, help="length of the open-loop test")
    add("--rounds", type=int, default=1, help="alternate the servers this many times; medians")
    add("--warmup", type=int, default=500, help="unmeasured requests at the start of each server")
    add("--text-share", type=float, default=0.1, help="share of member text messages (rest: adds)")
    add("--log-level", default="warning", help="SOPBOT_LOG_LEVEL of the servers (info: full logs)")
    add("--timeout", type=float, default=300.0, help="limit of each load phase, seconds")
    add("--drain-timeout", type=float, default=600.0, help="limit of the inbox drain, seconds")
    add("--seed", type=int, default=1)
    add("--json", action="store_true", help="also print the results as one JSON object")
    add("--check", action="store_true", help="exit 2 when a §8 target is missed")
    args = parser.parse_args(argv)
    if min(args.requests, args.concurrency, args.rounds, args.rate, args.rate_seconds) <= 0:
        parser.error("--requests, --concurrency, --rounds, --rate and --rate-seconds must be > 0")
    return args


def print_header(args: argparse.Namespace, pin: bool, count: int) -> None:
    where = (f"servers pinned to core {SERVER_CORE} (taskset), generator on core {GENERATOR_CORE}"
             if pin else "NOT pinned (needs taskset and two cores): numbers are noisier")
    print("callback throughput: sopbot POST /wecom/callback vs bare FastAPI POST /bare")
    print(f"  {os.cpu_count()} CPUs; {where}")
    print("  uvicorn 1 worker, uvloop, httptools, access log off; "
          f"app logs at {args.log_level} level (JSON to a file)")
    print("  sopbot: SQLite (WAL) in a temp dir, fresh database per server; saturation runs it "
          "twice,\n  callback path only (SOPBOT_INBOX_WORKER=false) and with the inbox worker; "
          "fixed rate with the worker")
    print(f"  payloads: {count:,} distinct encrypted callbacks, {1 - args.text_share:.0%} "
          f"change_external_contact/add_external_contact, {args.text_share:.0%} member text "
          f"\"你好\" (waits for its inline handling); {args.warmup} warm-up requests per server",
          flush=True)


async def run(args: argparse.Namespace, pin: bool) -> int:
    count = args.warmup + max(args.requests, round(args.rate * args.rate_seconds))
    print_header(args, pin, count)
    with tempfile.TemporaryDirectory(prefix="sopbot-bench-") as tmp:
        callbacks = make_callbacks(count, args.text_share, args.seed)
        bench = Bench(args, Path(tmp), callbacks, pin)
        rounds = await run_rounds(bench)
        fixed, fixed_inbox = await run_sopbot_fixed_rate(bench)
    results = Results(rounds, fixed, fixed_inbox)
    print_report(args, results)
    if args.json:
        print(json.dumps(to_json(args, results), ensure_ascii=False))
    return exit_status(args, results)


def main() -> int:
    args = parse_args()
    pin = pin_generator()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(args, pin))
    # uvloop makes the generator cheaper per request, keeping it far from saturating its core.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run(args, pin))


if __name__ == "__main__":
    sys.exit(main())
