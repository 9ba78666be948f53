"""Fan-out through the outbox: one post to N groups at a configured rate limit, against the
WeCom simulator; prints the time against the ideal (N ÷ rate) and the sender's memory.

    .venv-test/bin/python bench/fanout.py                         # 10,000 groups at 10,000/min
    .venv-test/bin/python bench/fanout.py --groups 2000 --rate 200
    .venv-test/bin/python bench/fanout.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Target (DESIGN.md §8): finishes within 10 % of the time the rate limit allows, with flat memory.
The simulator (`sopbot sim`, a subprocess on its own core) plays WeCom; this process runs the
real OutboxSender on a fresh database. Setup (creating the N app group chats in the simulator,
queuing the N rows in one unit of work as a planner would) is not timed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app import migrate  # noqa: E402
from app.engine.config import Settings, parse_rates  # noqa: E402
from app.engine.db import Database, sync_url  # noqa: E402
from app.engine.logs import configure_logging  # noqa: E402
from app.engine.outbox import store  # noqa: E402
from app.engine.outbox.models import PENDING, SENT  # noqa: E402
from app.engine.outbox.ratelimit import RateLimits  # noqa: E402
from app.engine.outbox.sender import OutboxSender  # noqa: E402
from app.engine.wecom.api import CreateAppChat, SendAppChat, Text  # noqa: E402
from app.engine.wecom.wiring import build_wecom  # noqa: E402
from bench._sim import start_simulator, wait_ready  # noqa: E402
from bench._sopbot import free_port  # noqa: E402

CORP_ID, SECRET = "wwbenchfanout0001", "bench-fanout-secret"
TOKEN, AES_KEY = "benchFanoutToken", "kW3mYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2"
MEMBERS = ["staff01", "staff02"]
API = "appchat/send"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=10_000)
    # WeCom's corp-wide frequency per API (10,000/min), the outbox's default rate for appchat/send.
    parser.add_argument("--rate", type=float, default=10_000 / 60,
                        help="requests per second allowed (default: 10,000/min)")
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    parser.add_argument("--timeout", type=float, default=600.0)
    return parser.parse_args()


def simulator_env() -> dict[str, str]:
    return {"WECOM_CORP_ID": CORP_ID, "WECOM_AGENT_SECRET": SECRET,
            "WECOM_CALLBACK_TOKEN": TOKEN, "WECOM_CALLBACK_AES_KEY": AES_KEY,
            "SOPBOT_SIM_MEMBERS": ",".join(MEMBERS)}


def settings_for(url: str, base_url: str, rate: float) -> Settings:
    return Settings(_env_file=None, database_url=url, corp_id=CORP_ID,  # type: ignore[call-arg]
                    callback_token=TOKEN, callback_aes_key=AES_KEY, agent_secret=SECRET,
                    secret_key="bench-secret-key-0123456789",
                    api_base=base_url, rate_limits=f"{API}={rate * 60:.0f}/60", outbox_sweep_s=0.2,
                    log_level="warning", log_format="json")


async def create_chats(sender: OutboxSender, count: int) -> list[str]:
    """The N internal group chats the post goes to (setup, not timed)."""
    ids = [f"benchchat{n:06d}" for n in range(count)]
    gate = asyncio.Semaphore(32)

    async def create(chat_id: str) -> None:
        async with gate:
            await sender.client.call(CreateAppChat(name=chat_id, owner=MEMBERS[0],
                                                   userlist=MEMBERS, chatid=chat_id))

    await asyncio.gather(*(create(chat_id) for chat_id in ids))
    return ids


async def queue_post(db: Database, chat_ids: list[str]) -> None:
    async with db.unit_of_work() as session:
        for chat_id in chat_ids:
            await store.enqueue(session, f"post:bench:{chat_id}", SendAppChat(
                chatid=chat_id, msgtype="text", text=Text(content="今日上新：春季新品到货")),
                kind="post")


@contextlib.contextmanager
def bench_database(given: str, workdir: Path) -> Iterator[str]:
    """A fresh SQLite file, or a schema of its own in the given PostgreSQL database (dropped
    at the end), migrated."""
    if not given:
        url = f"sqlite:///{workdir / 'fanout.db'}"
        migrate.upgrade(url)
        yield url
        return
    schema = f"sopbot_bench_{os.getpid()}"
    admin = create_engine(sync_url(given))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(given).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        migrate.upgrade(url.render_as_string(hide_password=False))
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run_fanout(db: Database, sender: OutboxSender, total: int,
                     timeout: float) -> tuple[float, list[tuple[int, float]]]:
    """Start the sender, wait until nothing is pending; (seconds, [(sent, RSS MB), ...])."""
    samples: list[tuple[int, float]] = []
    started = time.monotonic()
    cpu_before = time.process_time()
    sender.start()
    try:
        while time.monotonic() - started < timeout:
            await asyncio.sleep(0.25)
            samples.append((sender.counts[SENT], rss_mb()))
            async with db.reader() as session:
                if (await store.count_by_status(session)).get(PENDING, 0) == 0:
                    seconds = time.monotonic() - started
                    print(f"  sender CPU {100 * (time.process_time() - cpu_before) / seconds:.0f}"
                          "% of one core during the run")
                    return seconds, samples
        raise RuntimeError(f"not finished in {timeout:.0f} s: {sender.counts}")
    finally:
        await sender.stop()


def report(args: argparse.Namespace, seconds: float, samples: list[tuple[int, float]],
           counts: dict[str, int], before_mb: float) -> int:
    ideal = args.groups / args.rate
    ratio = seconds / ideal
    print(f"fan-out: {args.groups:,} posts to {API} at {args.rate:.1f}/s "
          f"(ideal {ideal:.1f} s), database {'PostgreSQL' if args.database_url else 'SQLite'}")
    print(f"  finished in {seconds:.1f} s = {ratio:.3f} × ideal   target <= 1.10: "
          f"{'PASS' if ratio <= 1.10 else 'FAIL'}")
    print(f"  outcomes: {dict(counts)}")
    print(f"  sender RSS before {before_mb:.1f} MB; by progress:")
    for share in (0.25, 0.5, 0.75, 1.0):
        sent, mb = next(((s, m) for s, m in samples if s >= share * args.groups), samples[-1])
        print(f"    {share:>4.0%} ({sent:>6,} sent)  {mb:7.1f} MB  (+{mb - before_mb:.1f})")
    peak = max(mb for _, mb in samples)
    print(f"  peak {peak:.1f} MB (+{peak - before_mb:.1f} MB over the start)")
    return 0 if counts.get(SENT, 0) == args.groups else 1


async def main() -> int:
    args = parse_args()
    configure_logging("warning", "json")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with bench_database(args.database_url, workdir) as url:
            return await run(args, url, workdir)


async def run(args: argparse.Namespace, url: str, workdir: Path) -> int:
    port = free_port()
    sim = start_simulator(port, workdir, simulator_env())
    try:
        base_url = f"http://127.0.0.1:{port}"
        await wait_ready(f"{base_url}/sim/clock")
        settings = settings_for(url, base_url, args.rate)
        db = Database(url)
        http, wecom, _tokens = build_wecom(settings, db)
        sender = OutboxSender(db, wecom, settings, RateLimits(parse_rates(settings.rate_limits)))
        try:
            await queue_post(db, await create_chats(sender, args.groups))
            before = rss_mb()
            seconds, samples = await run_fanout(db, sender, args.groups, args.timeout)
            return report(args, seconds, samples, dict(sender.counts), before)
        finally:
            await http.aclose()
            await db.dispose()
    finally:
        sim.terminate()
        sim.wait(15)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
