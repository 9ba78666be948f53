"""A replica dies mid-burst: what becomes of the welcomes it held?

    .venv-test/bin/python bench/replica_death.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv-test/bin/python bench/replica_death.py --adds 200 --welcome-delay 0.5 --runs 3

Two `sopbot serve` replicas share a PostgreSQL schema of their own; a `sopbot sim` plays WeCom,
answering every send_welcome_msg after `--welcome-delay` seconds (a slow WeCom, so welcomes
stay on the wire) and sending the friend adds' callbacks to the replicas in turn. The first
replica to start leads the scheduler. Once the leader has welcomes on the wire (claimed, marked
in flight, unanswered) it is killed with SIGKILL. Then, per welcome code (targets: zero each):

- lost: WeCom never accepted a welcome for it;
- duplicated: WeCom accepted more than one (the simulator's single-use codes make this
  impossible unless it is broken: counted anyway);
- late: a copy reached WeCom after the code's 20 s (WeCom answered 41050);
- misrecorded: the outbox row or the funnel says something other than what happened (a welcome
  WeCom accepted recorded as anything but sent, or counted as missed).

And how long after the kill the survivor took over the dead replica's claimed welcomes (its
first request for each) and the scheduler's lead. tests/e2e/test_replica_death.py runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.engine.db import sync_url  # noqa: E402
from bench._sim import SIM_HEADERS, start_simulator, wait_ready  # noqa: E402
from bench._sopbot import free_port  # noqa: E402
from tests.pg import scratch_schema  # noqa: E402

CORP_ID, SECRET = "wwbenchdeath00001", "bench-death-secret"
TOKEN, AES_KEY = "benchDeathToken", "dQ7nYm3qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B9"
WELCOME = "externalcontact/send_welcome_msg"
LEADER_LOCK = 0x50_42_43_41  # app/engine/bot/scheduler.py
CODE_LIFE_S = 20.0


@dataclass
class Report:
    adds: int
    delivered: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    misrecorded: list[str] = field(default_factory=list)
    held_at_kill: int = 0  # welcome rows the killed replica had claimed
    on_the_wire_at_kill: int = 0  # of those, marked in flight (a request may have left)
    takeover_s: list[float] = field(default_factory=list)  # kill → survivor's first request
    leadership_s: float | None = None  # kill → the survivor holds the scheduler's lock
    statuses: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        takeover = (f"median {statistics.median(self.takeover_s):.2f} s, "
                    f"max {max(self.takeover_s):.2f} s" if self.takeover_s else "none needed")
        leadership = "not measured" if self.leadership_s is None else f"{self.leadership_s:.2f} s"
        return [
            f"friend adds {self.adds}, welcomes WeCom accepted {self.delivered}",
            f"the killed replica held {self.held_at_kill} welcomes, "
            f"{self.on_the_wire_at_kill} of them on the wire",
            f"lost {len(self.lost)}, duplicated {len(self.duplicated)}, late {len(self.late)}, "
            f"misrecorded {len(self.misrecorded)}",
            f"claims taken over after the kill: {takeover}",
            f"scheduler lead taken over after the kill: {leadership}",
            "outbox statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())),
        ]


def environment(database_url: str, sim_url: str, port: int, workdir: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SOPBOT_", "WECOM_"))}
    return {**clean, "PYTHONPATH": str(REPO), "SOPBOT_DATABASE_URL": database_url,
            "WECOM_CORP_ID": CORP_ID, "WECOM_CALLBACK_TOKEN": TOKEN,
            "WECOM_CALLBACK_AES_KEY": AES_KEY, "WECOM_AGENT_ID": "1000002",
            "WECOM_AGENT_SECRET": SECRET, "WECOM_API_BASE": sim_url,
            "SOPBOT_SECRET_KEY": "bench-death-secret-key-0123", "SOPBOT_PORT": str(port),
            "SOPBOT_PUBLIC_URL": f"http://127.0.0.1:{port}", "SOPBOT_LOG_LEVEL": "warning",
            "SOPBOT_LOG_FORMAT": "json", "SOPBOT_FLOWS": str(REPO / "sop_flows"),
            "SOPBOT_KEYWORDS": str(REPO / "keywords.yaml"),
            "SOPBOT_PHOTO_DIR": str(workdir / "photos")}


def start_replica(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as stream:
        return subprocess.Popen([sys.executable, "-m", "app.faces.cli.main", "serve"],
                                cwd=REPO, env=env, stdout=stream, stderr=subprocess.STDOUT)


def query(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


async def wait_for(probe: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def leader_backend(engine: Engine) -> int | None:
    rows = query(engine, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = :k "
                         "AND granted", k=LEADER_LOCK)
    return int(rows[0][0]) if rows else None


async def run(pg_url: str, workdir: Path, adds: int = 80, welcome_delay_s: float = 0.5,
              timeout: float = 60.0) -> Report:
    """The whole scenario on a schema of its own, dropped at the end."""
    with scratch_schema(pg_url, f"sopbot_death_{os.getpid()}_{int(time.time())}") as url:
        engine = create_engine(sync_url(url))
        try:
            return await _run(url, engine, workdir, adds, welcome_delay_s, timeout)
        finally:
            engine.dispose()


async def _run(url: str, engine: Engine, workdir: Path, adds: int, delay_s: float,
               timeout: float) -> Report:
    ports = [free_port(), free_port()]
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    envs = [environment(url, sim_url, port, workdir) for port in ports]
    subprocess.run([sys.executable, "-m", "app.faces.cli.main", "migrate"], cwd=REPO, env=envs[0],
                   check=True, capture_output=True)
    bots = ",".join(f"http://127.0.0.1:{port}/wecom/callback" for port in ports)
    sim = start_simulator(sim_port, workdir, {
        "WECOM_CORP_ID": CORP_ID, "WECOM_CALLBACK_TOKEN": TOKEN, "WECOM_CALLBACK_AES_KEY": AES_KEY,
        "WECOM_AGENT_SECRET": SECRET, "SOPBOT_SIM_BOT_URL": bots,
        "SOPBOT_SIM_MEMBERS": "zhangsan,lisi,staff01"}, core=1)
    replicas: list[subprocess.Popen[bytes]] = []
    try:
        await wait_ready(f"{sim_url}/sim/clock")
        replicas.append(start_replica(envs[0], workdir / "replica-a.log"))
        await wait_ready(f"http://127.0.0.1:{ports[0]}/healthz")
        await wait_for(lambda: leader_backend(engine) is not None, "the first replica to lead")
        replicas.append(start_replica(envs[1], workdir / "replica-b.log"))
        await wait_ready(f"http://127.0.0.1:{ports[1]}/healthz")
        async with httpx.AsyncClient(base_url=sim_url, trust_env=False, timeout=30,
                                     headers=SIM_HEADERS) as client:
            await _slow_welcomes(client, delay_s)
            return await _burst_and_kill(client, engine, replicas[0], adds, timeout)
    finally:
        for proc in [*replicas, sim]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*replicas, sim]:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _slow_welcomes(client: httpx.AsyncClient, delay_s: float) -> None:
    answer = await client.post("/sim/faults", json={"path": WELCOME, "delay_s": delay_s})
    answer.raise_for_status()


async def _burst_and_kill(client: httpx.AsyncClient, engine: Engine,
                          victim: subprocess.Popen[bytes], adds: int, timeout: float) -> Report:
    report = Report(adds)
    for n in range(adds):  # in the background: the simulator sends them as they come
        added = await client.post("/sim/scenarios/friend_add", json={
            "userid": "zhangsan", "external_userid": f"wmDeath{n:05d}", "wait": False})
        added.raise_for_status()
    mine = f"%:{victim.pid}:%"
    await wait_for(lambda: query(engine, "SELECT count(*) FROM outbox_message WHERE kind = "
                                         "'welcome' AND status = 'pending' AND in_flight_at IS "
                                         "NOT NULL AND lease_owner LIKE :mine",
                                 mine=mine)[0][0] > 0, "welcomes on the victim's wire")
    held = query(engine, "SELECT request::json->>'welcome_code', in_flight_at IS NOT NULL FROM "
                         "outbox_message WHERE kind = 'welcome' AND status = 'pending' "
                         "AND lease_owner LIKE :mine", mine=mine)
    victim.send_signal(signal.SIGKILL)
    killed_at = time.time()
    report.held_at_kill = len(held)
    report.on_the_wire_at_kill = sum(1 for _, wire in held if wire)
    await _leadership(engine, killed_at, report)
    try:
        await wait_for(lambda: _settled(engine, adds), "every welcome settled", timeout)
    except RuntimeError:
        counts = query(engine, "SELECT status, count(*) FROM outbox_message WHERE kind = "
                               "'welcome' GROUP BY status")
        sent = (await client.get("/sim/callbacks")).json()["callbacks"]
        outcomes = Counter(c["outcome"] for c in sent)
        failed = [c["attempts"] for c in sent if c["outcome"] != "delivered"][:3]
        raise RuntimeError(f"welcomes not settled after {timeout:.0f} s: {dict(counts)}; "
                           f"callbacks {dict(outcomes)}: {failed}") from None
    await _judge(client, engine, {code for code, _ in held}, killed_at, report)
    return report


async def _leadership(engine: Engine, killed_at: float, report: Report) -> None:
    """The survivor holds the scheduler's lock (PostgreSQL dropped the dead one's)."""
    before = leader_backend(engine)
    try:
        await wait_for(lambda: leader_backend(engine) not in (None, before), "a new leader", 30)
    except RuntimeError:
        return
    report.leadership_s = time.time() - killed_at


def _settled(engine: Engine, adds: int) -> bool:
    rows = query(engine, "SELECT count(*) FILTER (WHERE status <> 'pending'), count(*) "
                         "FROM outbox_message WHERE kind = 'welcome'")
    return rows[0][1] == adds and rows[0][0] == adds


async def _judge(client: httpx.AsyncClient, engine: Engine, held: set[str], killed_at: float,
                 report: Report) -> None:
    requests = (await client.get("/sim/requests", params={"path": WELCOME})).json()["requests"]
    answers: dict[str, list[int]] = {}
    firsts: dict[str, float] = {}  # a held code → its first request after the kill
    for request in requests:
        code = str((request.get("body") or {}).get("welcome_code", ""))
        errcode = request.get("errcode")
        answers.setdefault(code, []).append(-1 if errcode is None else int(errcode))
        if code in held and request["time"] >= killed_at:
            firsts.setdefault(code, request["time"] - killed_at)
    report.takeover_s = sorted(firsts.values())
    rows = query(engine, "SELECT request::json->>'welcome_code', status FROM outbox_message "
                         "WHERE kind = 'welcome'")
    steps = {key: step for key, step in query(
        engine, "SELECT event_key, step FROM funnel_event WHERE step IN "
                "('welcome_sent', 'welcome_missed')")}
    for code, status in rows:
        report.statuses[status] += 1
        accepted = answers.get(code, []).count(0)
        report.delivered += min(accepted, 1)
        if accepted == 0:
            report.lost.append(code)
        if accepted > 1:
            report.duplicated.append(code)
        if 41050 in answers.get(code, []):
            report.late.append(code)
        counted_missed = f"welcome_missed:{code}" in steps
        if accepted and (status != "sent" or counted_missed
                         or f"welcome_sent:{code}" not in steps):
            report.misrecorded.append(code)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "SOPBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--adds", type=int, default=80)
    parser.add_argument("--welcome-delay", type=float, default=0.5,
                        help="seconds WeCom (the simulator) takes to answer a welcome")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for every welcome to settle after the kill")
    return parser.parse_args()


async def main() -> int:
    args = parse_args()
    worst = 0
    for number in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as tmp:
            report = await run(args.database_url, Path(tmp), args.adds, args.welcome_delay,
                               args.timeout)
        print(f"run {number}:")
        for line in report.lines():
            print(f"  {line}")
        worst = max(worst, len(report.lost) + len(report.duplicated) + len(report.late)
                    + len(report.misrecorded))
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
