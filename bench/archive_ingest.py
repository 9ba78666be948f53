"""Chat archive ingestion: archived messages per second stored into rollups (and every other
page step the behaviours register: questions, newcomers, group rules) by the archive reader on
a SQLite file, against a yardstick measured in the same run: the bare insert of the same
messages into archive_message, with nothing derived.

    .venv-test/bin/python bench/archive_ingest.py                       # 50,000 messages
    .venv-test/bin/python bench/archive_ingest.py --messages 200000 --groups 400 --people 100000
    .venv-test/bin/python bench/archive_ingest.py --child      # opening records in the child too

Target (DESIGN.md §8): at least 5,000 messages a second on one core on SQLite. The reader runs
as deployed: pages of 1,000, one transaction each with its cursor. `--child` also opens every
record in the child process (the simulator's plain backend: base64 and JSON over a pipe; the
SDK's DecryptData and the RSA step cost more, and are WeCom's, not sopbot's).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import handlers  # noqa: E402
from app import migrate  # noqa: E402
from app.archive.models import ArchivedMessage  # noqa: E402
from app.archive.reader import ArchiveReader  # noqa: E402
from app.engine.bot.env import Env  # noqa: E402
from app.engine.config import Settings  # noqa: E402
from app.engine.db import Database, insert_for  # noqa: E402
from app.engine.wecom.api_archive import ChatData  # noqa: E402
from app.engine.wecom.archive_events import parse_message  # noqa: E402
from app.engine.wecom.archive_source import Opened, SimulatorSource, Unopened  # noqa: E402
from app.flows import load_flows  # noqa: E402

TARGET = 5000.0
TEXTS = ("大家好，我是做便利店的，新人报到", "这款饮料有没有整箱批发价？", "多少钱一箱？",
         "明天能发货吗", "有的，下单后24小时内发", "谢谢群主", "我们店也在用，卖得不错",
         "怎么开发票？",
         "收到", "好的", "推荐一下这款零食，复购率很高", "周末有活动吗？")


def chat_records(count: int, groups: int, people: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    out = []
    for n in range(count):
        staff = rng.random() < 0.15
        sender = f"staff{rng.randrange(20):02d}" if staff else f"wmBench{rng.randrange(people):07d}"
        out.append({"msgid": f"bench{n:09d}_external", "action": "send", "from": sender,
                    "tolist": [], "roomid": f"wrBench{rng.randrange(groups):05d}",
                    "msgtime": int((start + timedelta(seconds=n * 20)).timestamp() * 1000),
                    "msgtype": "text", "text": {"content": rng.choice(TEXTS)}})
    return out


class Prepared(SimulatorSource):
    """Pages from memory; records opened here (no child) unless `child`."""

    def __init__(self, messages: list[dict[str, Any]], child: bool) -> None:
        super().__init__(wecom=None, corp_id="bench")  # type: ignore[arg-type]
        self.child_opens = child
        self.records = [ChatData(seq=n + 1, msgid=m["msgid"], encrypt_chat_msg=base64.b64encode(
            json.dumps(m, ensure_ascii=False).encode()).decode()) for n, m in enumerate(messages)]
        self.plain = {r.seq: m for r, m in zip(self.records, messages, strict=True)}

    async def fetch(self, seq: int, limit: int) -> list[ChatData]:
        return self.records[seq:seq + limit]  # seq n is at index n - 1

    async def open(self, records: list[ChatData]) -> list[Opened | Unopened]:
        if self.child_opens:
            return await super().open(records)
        return [Opened(r, self.plain[r.seq]) for r in records]


def settings_for(url: str) -> Settings:
    return Settings(_env_file=None, database_url=url, corp_id="bench",  # type: ignore[call-arg]
                    callback_token="t", callback_aes_key="a" * 43, secret_key="b" * 20,
                    archive_secret="bench-archive-secret", archive_source="simulator",
                    flows_path=REPO / "sop_flows", keywords_path=REPO / "keywords.yaml",
                    log_level="warning", log_format="json", scheduler=False)


async def yardstick(url: str, messages: list[dict[str, Any]]) -> float:
    """Seconds to insert the parsed messages, 1,000 a transaction, nothing derived."""
    db = Database(url)
    parsed = [parse_message(n + 1, m) for n, m in enumerate(messages)]
    started = time.perf_counter()
    for offset in range(0, len(parsed), 1000):
        async with db.unit_of_work() as session:
            await session.execute(insert_for(session, ArchivedMessage.__table__), [{
                "msgid": m.msgid, "seq": m.seq, "chat_id": m.chat_id, "sender": m.sender,
                "sender_kind": m.sender_kind, "msgtime": m.msgtime, "msgtype": m.msgtype,
                "text": m.text, "recalled": False} for m in parsed[offset:offset + 1000]])
    elapsed = time.perf_counter() - started
    await db.dispose()
    return elapsed


async def ingest(url: str, messages: list[dict[str, Any]], child: bool) -> tuple[float, int]:
    settings = settings_for(url)
    db = Database(url)
    env = Env(settings, load_flows(settings.flows_path), db)
    steps = handlers.build_router().archive_page_steps(env)
    source = Prepared(messages, child)
    reader = ArchiveReader(db, source, settings, steps)
    started = time.perf_counter()
    stored = await reader.read()
    elapsed = time.perf_counter() - started
    await source.close()
    await db.dispose()
    return elapsed, stored


def fresh_db(directory: Path, name: str) -> str:
    url = f"sqlite+aiosqlite:///{directory / name}.db"
    migrate.upgrade(url)
    return url


def main() -> None:
    logging.disable(logging.INFO)  # a line per page would be timed too
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--child", action="store_true", help="open records in the child too")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    messages = chat_records(args.messages, args.groups, args.people, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        bare = asyncio.run(yardstick(fresh_db(directory, "bare"), messages))
        took, stored = asyncio.run(ingest(fresh_db(directory, "reader"), messages, args.child))
    rate, bare_rate = stored / took, len(messages) / bare
    print(f"archive ingest: {len(messages):,} messages, {args.groups} groups, "
          f"{args.people:,} people, SQLite{', records opened in the child' if args.child else ''}")
    print(f"  bare insert (yardstick): {bare_rate:10,.0f} messages/s")
    print(f"  reader + page steps:     {rate:10,.0f} messages/s "
          f"({rate / bare_rate:.2f} × the yardstick; {stored:,} stored)")
    ok = rate >= TARGET and stored == len(messages)
    print(f"  {rate:,.0f}/s = {rate / TARGET:.2f} × the target ({TARGET:,.0f}/s): "
          f"{'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 2)


if __name__ == "__main__":
    main()
