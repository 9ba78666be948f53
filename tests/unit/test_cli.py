"""The `sopbot` command: one clear line for configuration problems, no traceback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app import migrate
from tests.conftest import AES_KEY, REPO

SOPBOT = [sys.executable, "-m", "app.faces.cli.main"]


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "SOPBOT_"))}
    clean["PYTHONPATH"] = str(REPO)
    return subprocess.run([*SOPBOT, *args], env={**clean, **env}, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


BASE = {"WECOM_CORP_ID": "wwcorp", "WECOM_CALLBACK_TOKEN": "tok",
        "WECOM_CALLBACK_AES_KEY": AES_KEY, "SOPBOT_SECRET_KEY": "cli-test-secret-key"}


def test_serve_with_bad_aes_key_prints_one_line(tmp_path: Path) -> None:
    result = run(["serve"], {**BASE, "WECOM_CALLBACK_AES_KEY": "short"}, tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("sopbot: configuration error: WECOM_CALLBACK_AES_KEY: must be "
                             "exactly 43 characters of A-Z, a-z, 0-9 (got 5)\n")
    assert "short" not in result.stderr


def test_serve_with_missing_variable_prints_one_line(tmp_path: Path) -> None:
    env = dict(BASE)
    del env["WECOM_CORP_ID"]
    result = run(["serve"], env, tmp_path)
    assert result.returncode == 2
    assert result.stderr == "sopbot: configuration error: WECOM_CORP_ID is not set\n"


def test_serve_on_postgresql_without_a_wecom_secret_prints_one_line(tmp_path: Path) -> None:
    # No built-in simulator for a deployment: the forgotten secret stops it, before the
    # database is even opened.
    env = {**BASE, "SOPBOT_DATABASE_URL": "postgresql+psycopg://sopbot@127.0.0.1:1/sopbot",
           "SOPBOT_FLOWS": str(REPO / "sop_flows"), "SOPBOT_KEYWORDS": str(REPO / "keywords.yaml")}
    result = run(["serve"], env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("sopbot: WECOM_AGENT_SECRET: required with a PostgreSQL")
    assert result.stderr.count("\n") == 1


def test_check_reports_bad_flow_file_with_line(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(REPO / "sop_flows", flows)
    (flows / "commands.yaml").write_text("help: [\n", encoding="utf-8")
    result = run(["check"], {**BASE, "SOPBOT_FLOWS": str(flows),
                             "SOPBOT_KEYWORDS": str(REPO / "keywords.yaml")}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"sopbot: {flows / 'commands.yaml'}:2: invalid YAML")
    assert "Traceback" not in result.stderr


def test_check_reports_every_problem_in_one_run(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(REPO / "sop_flows", flows)
    (flows / "kf.yaml").write_text("welcome: [\n", encoding="utf-8")
    (flows / "lifecycle.yaml").write_text("strong_dayz: 30\n", encoding="utf-8")
    keywords = tmp_path / "keywords.yaml"
    keywords.write_text("rulez: []\n", encoding="utf-8")
    result = run(["check"], {**BASE, "SOPBOT_FLOWS": str(flows),
                             "SOPBOT_KEYWORDS": str(keywords)}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "sopbot: 8 problems:"
    assert [line.split(": ", 2)[1] for line in lines[1:]] == [
        "invalid YAML", "strong_dayz", "invitation", "owner_task", "pool_empty", "rulez",
        "handoff", "texts"]
    assert "strong_dayz: unknown key (did you mean 'strong_days'?)" in result.stderr


def test_serve_help_says_what_runs_today(tmp_path: Path) -> None:
    result = run(["serve", "--help"], {"COLUMNS": "200"}, tmp_path)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "(later)" not in text  # issue 14 item 14: the scheduler has run for a while
    assert "outbox sender" in text and "scheduler" in text


def test_check_passes_on_the_repository(tmp_path: Path) -> None:
    result = run(["check", "--env-file", str(REPO / ".env.example")], {}, REPO)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    result = run(["migrate"], {"SOPBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"is at revision {migrate.head_revision()}" in result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_migrates_an_empty_sqlite_database_and_answers(tmp_path: Path) -> None:
    port = free_port()
    env = {**BASE, "SOPBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
           "SOPBOT_PORT": str(port), "SOPBOT_FLOWS": str(REPO / "sop_flows"),
           "SOPBOT_KEYWORDS": str(REPO / "keywords.yaml"), "SOPBOT_LOG_FORMAT": "json"}
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "SOPBOT_"))}
    proc = subprocess.Popen([*SOPBOT, "serve"], env={**clean, **env, "PYTHONPATH": str(REPO)},
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        health = _wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        assert health == {"status": "ok", "database": "ok"}
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "sopbot_started" in err
    assert AES_KEY not in err


def _wait_healthy(url: str, proc: subprocess.Popen[str]) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sopbot serve exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            return httpx.get(url, timeout=1).json()
        except httpx.HTTPError:
            time.sleep(0.2)
    pytest.fail("sopbot serve did not become healthy")


def test_inbox_status_on_a_database_without_schema_says_so(tmp_path: Path) -> None:
    result = run(["inbox", "status"], {"SOPBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'e.db'}"},
                 tmp_path)
    assert result.returncode == 2
    assert result.stderr.endswith("has no sopbot schema; run `sopbot migrate`\n")
    assert "Traceback" not in result.stderr


def test_inbox_status_after_migrate(tmp_path: Path) -> None:
    env = {"SOPBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'i.db'}"}
    assert run(["migrate"], env, tmp_path).returncode == 0
    result = run(["inbox", "status"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == ["pending  0", "done     0", "failed   0"]


def test_event_stored_by_a_killed_process_is_handled_by_the_next(tmp_path: Path) -> None:
    """SIGKILL between answer and handling (the first process runs no worker), then restart."""
    import signal
    import sqlite3

    from app.engine.wecom.crypto import WeComCrypto
    from tests.conftest import CORP_ID, TOKEN
    from tests.fakes import payloads

    db_file = tmp_path / "kill.db"
    env = {"WECOM_CORP_ID": CORP_ID, "WECOM_CALLBACK_TOKEN": TOKEN,
           "WECOM_CALLBACK_AES_KEY": AES_KEY, "SOPBOT_DATABASE_URL": f"sqlite:///{db_file}",
           "SOPBOT_SECRET_KEY": "cli-test-secret-key",
           "SOPBOT_FLOWS": str(REPO / "sop_flows"), "SOPBOT_KEYWORDS": str(REPO / "keywords.yaml"),
           "SOPBOT_LOG_FORMAT": "json"}
    port = free_port()
    first = _start(env | {"SOPBOT_PORT": str(port), "SOPBOT_INBOX_WORKER": "false"}, tmp_path)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/healthz", first)
        params, body = WeComCrypto(TOKEN, AES_KEY, CORP_ID).encrypt_callback(
            payloads.external_contact(corp_id=CORP_ID))
        answer = httpx.post(f"http://127.0.0.1:{port}/wecom/callback", params=params,
                            content=body, timeout=5)
        assert answer.status_code == 200
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert _statuses(sqlite3, db_file) == ["pending"]

    port = free_port()
    second = _start(env | {"SOPBOT_PORT": str(port)}, tmp_path)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/healthz", second)
        deadline = time.monotonic() + 20
        while _statuses(sqlite3, db_file) != ["done"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _statuses(sqlite3, db_file) == ["done"]
    finally:
        second.terminate()
        second.communicate(timeout=20)


def _start(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "SOPBOT_"))}
    return subprocess.Popen([*SOPBOT, "serve"], env={**clean, **env, "PYTHONPATH": str(REPO)},
                            cwd=cwd, stderr=subprocess.PIPE, text=True)


def _statuses(sqlite3, db_file: Path) -> list[str]:  # type: ignore[no-untyped-def]
    with sqlite3.connect(db_file) as conn:
        return [row[0] for row in conn.execute("SELECT status FROM inbox_event ORDER BY id")]


def test_outbox_status_retry_and_drop(tmp_path: Path) -> None:
    import asyncio
    import sqlite3

    from app.engine.db import Database
    from app.engine.outbox import store
    from app.engine.wecom.api import SendWelcomeMsg, Text

    env = {"SOPBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'o.db'}"}
    assert run(["migrate"], env, tmp_path).returncode == 0

    async def queue() -> None:
        db = Database(env["SOPBOT_DATABASE_URL"])
        async with db.unit_of_work() as session:
            for code in ("A", "B", "C"):
                await store.enqueue(session, f"welcome:{code}", SendWelcomeMsg(
                    welcome_code=code, text=Text(content="欢迎")), kind="welcome")
        await db.dispose()

    asyncio.run(queue())
    with sqlite3.connect(tmp_path / "o.db") as conn:
        conn.execute("UPDATE outbox_message SET status='dead', errcode=41051, "
                     "last_error='41051: already welcomed' WHERE id=1")
        conn.execute("UPDATE outbox_message SET status='unknown', last_error='no answer' "
                     "WHERE id=2")
    status = run(["outbox", "status"], env, tmp_path)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[1:6] == ["pending  1", "sent     0", "dead     1", "expired  0", "unknown  1"]
    assert lines[6].startswith("unknown #2 welcome externalcontact/send_welcome_msg key=welcome:B")
    assert "errcode=41051" in lines[7]
    assert run(["outbox", "retry", "2"], env, tmp_path).stdout == "requeued 1 message(s)\n"
    dropped = run(["outbox", "drop", "1", "3", "--reason", "sent by hand"], env, tmp_path)
    assert dropped.stdout == "dropped 1 message(s)\n"  # row 1 was dead already
    with sqlite3.connect(tmp_path / "o.db") as conn:
        rows = conn.execute("SELECT status, last_error FROM outbox_message ORDER BY id").fetchall()
    assert rows[1][0] == "pending"
    assert rows[2] == ("dead", "dropped by operator: sent by hand")
    missing = run(["outbox", "drop", "1"], env, tmp_path)
    assert missing.returncode == 2 and "--reason" in missing.stderr


SIMULATED = {**BASE, "SOPBOT_FLOWS": str(REPO / "sop_flows"),
             "SOPBOT_KEYWORDS": str(REPO / "keywords.yaml")}  # no WeCom secret: the simulator


def test_serve_with_the_simulator_refuses_a_public_address_in_one_line(tmp_path: Path) -> None:
    env = {**SIMULATED, "SOPBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'sim.db'}",
           "SOPBOT_HOST": "0.0.0.0"}
    result = run(["serve"], env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("sopbot: SOPBOT_HOST=0.0.0.0 is not a loopback address")
    assert "SOPBOT_SIM_ALLOW_REMOTE=true" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "sim.db").exists()  # refused before anything was opened


@dataclass
class Served:
    state_url: str  # the built-in simulator's /sim/state
    out: str = ""  # what serve printed on stdout and stderr, once it stopped
    err: str = ""


@contextmanager
def serving_simulated(tmp_path: Path, **env: str) -> Iterator[Served]:
    """`sopbot serve` with the built-in simulator on a database in tmp_path, until the block
    ends; its output is on the Served after that."""
    port = free_port()
    env = {**SIMULATED, "SOPBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'sim.db'}",
           "SOPBOT_PORT": str(port), "SOPBOT_LOG_FORMAT": "json", **env}
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "SOPBOT_"))}
    proc = subprocess.Popen([*SOPBOT, "serve"], env={**clean, **env, "PYTHONPATH": str(REPO)},
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    served = Served(f"http://127.0.0.1:{port}/wecom-sim/sim/state")
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        yield served
    finally:
        proc.terminate()
        served.out, served.err = proc.communicate(timeout=20)


def test_serve_with_the_simulator_hands_its_key_to_the_local_operator_only(
        tmp_path: Path) -> None:
    key_file = tmp_path / "sim.db.sim-key"
    with serving_simulated(tmp_path) as served:
        assert key_file.stat().st_mode & 0o777 == 0o600
        key = key_file.read_text(encoding="utf-8").strip()
        assert httpx.get(served.state_url, timeout=5).status_code == 401
        assert httpx.get(served.state_url, headers={"X-Sim-Key": key},
                         timeout=5).status_code == 200
    # stdout is no terminal here (a log, as under Docker): the file is named, the key is not.
    assert f"control key in {key_file}" in served.out and key not in served.out
    assert key not in served.err  # never in the log


def test_serve_with_a_given_simulator_key_writes_no_file_and_removes_a_stale_one(
        tmp_path: Path) -> None:
    stale = tmp_path / "sim.db.sim-key"
    stale.write_text("an-old-key-that-opens-nothing\n", encoding="utf-8")
    key = "a-key-the-operator-chose-0123"
    with serving_simulated(tmp_path, SOPBOT_SIM_KEY=key) as served:
        assert httpx.get(served.state_url, headers={"X-Sim-Key": key},
                         timeout=5).status_code == 200
        assert not stale.exists()
    assert "need SOPBOT_SIM_KEY" in served.out and key not in served.out + served.err


def test_a_made_key_is_shown_on_a_terminal_only(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from app.faces.sim import keyfile

    path = tmp_path / "k.sim-key"
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert "control key made-key-0123456789" in keyfile.hand_over("made-key-0123456789", False,
                                                                   path)
    assert path.stat().st_mode & 0o777 == 0o600
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert "made-key" not in keyfile.hand_over("made-key-0123456789", False, path)
    assert path.read_text(encoding="utf-8") == "made-key-0123456789\n"
