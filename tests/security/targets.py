"""The runtime the attack script (test_attacks.py) goes after, as a new user would start them:
real `sopbot` processes on free ports, their logs kept for inspection.

- "sqlite": `sopbot demo --exit` makes a real demo database, then `sopbot serve --env-file
  demo/demo.env` serves it in simulator mode (no WeCom secret, SQLite: the simulator is built
  in at /wecom-sim).
- "postgresql": the built-in simulator runs only on SQLite, so a standalone `sopbot sim` plays
  WeCom and two `sopbot serve` replicas share a PostgreSQL schema of their own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.engine.wecom.crypto import WeComCrypto
from app.verify.links import VerifyLinks
from bench._sopbot import free_port
from tests.conftest import REPO
from tests.pg import scratch_schema

SOPBOT = [sys.executable, "-m", "app.faces.cli.main"]
OPERATOR_PASSWORD = "attack-test-password-1"
SHOP_PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 40
VERIFY_LINK = re.compile(r"/verify/[A-Za-z0-9._-]+")


@dataclass
class Target:
    """One running service under attack."""

    name: str
    replicas: list[str]  # base URLs; the first receives the simulator's callbacks
    sim_base: str  # where the simulator's /sim and /cgi-bin paths are
    env: dict[str, str]  # the service's configuration
    logs: list[Path]  # each replica's stderr
    workdir: Path
    link: str = ""  # a member's verification link path, made by a real friend add
    extras: dict[str, object] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.replicas[0]

    @property
    def sim_key(self) -> str:
        return self.env["SOPBOT_SIM_KEY"]

    @property
    def api_key(self) -> str:
        return self.env["SOPBOT_API_KEY"]

    @property
    def operator(self) -> str:
        return self.env["SOPBOT_OPERATORS"].split(",")[0]

    @property
    def crypto(self) -> WeComCrypto:
        return WeComCrypto(self.env["WECOM_CALLBACK_TOKEN"], self.env["WECOM_CALLBACK_AES_KEY"],
                           self.env["WECOM_CORP_ID"])

    def log_text(self) -> str:
        return "".join(path.read_text(encoding="utf-8", errors="replace") for path in self.logs)

    def log_size(self) -> int:
        return sum(path.stat().st_size for path in self.logs)

    def sim(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        """The simulator's control paths, with its key (the local operator's)."""
        return httpx.request(method, f"{self.sim_base}/sim/{path}", timeout=30,
                             headers={"X-Sim-Key": self.sim_key}, **kwargs)  # type: ignore[arg-type]


def clean_env(**values: str) -> dict[str, str]:
    """The test process's environment without its SOPBOT_/WECOM_ settings, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPBOT_", "WECOM_"))}
    return {**env, "PYTHONPATH": str(REPO), **values}


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines()
             if "=" in line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def run(args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*SOPBOT, *args], env=clean_env(**env), cwd=cwd, input=stdin,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"sopbot {args[0]} failed: {result.stderr[-2000:]}"
    return result


@contextmanager
def process(args: list[str], env: dict[str, str], cwd: Path, log: Path,
            ready_url: str, headers: dict[str, str] | None = None) -> Iterator[None]:
    """A long-running `sopbot` command, its stderr in `log`, until `ready_url` answers 200."""
    with log.open("w", encoding="utf-8") as stream:
        proc = subprocess.Popen([*SOPBOT, *args], env=clean_env(**env), cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=stream, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"sopbot {args[0]} exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(ready_url, headers=headers, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"sopbot {args[0]} did not become ready"
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def serve(stack: ExitStack, env: dict[str, str], cwd: Path, name: str) -> tuple[str, Path]:
    port = free_port()
    url, log = f"http://127.0.0.1:{port}", cwd / f"{name}.log"
    stack.enter_context(process(["serve", "--port", str(port)], env, cwd, log,
                                f"{url}/healthz"))
    return url, log


def set_operator_password(env: dict[str, str], cwd: Path, userid: str) -> None:
    run(["operators", "passwd", userid, "--password-stdin"], env, cwd,
        stdin=OPERATOR_PASSWORD + "\n")


@contextmanager
def sqlite_demo(workdir: Path) -> Iterator[Target]:
    """A real `sopbot demo` database, served by `sopbot serve` in simulator mode."""
    flows = {"SOPBOT_FLOWS": str(REPO / "sop_flows"),
             "SOPBOT_KEYWORDS": str(REPO / "keywords.yaml")}
    run(["demo", "--members", "40", "--days", "1", "--exit", "--port", str(free_port())],
        flows, workdir, timeout=300)
    env = read_env_file(workdir / "demo" / "demo.env")
    port = free_port()
    env.update(SOPBOT_PORT=str(port), SOPBOT_PUBLIC_URL=f"http://127.0.0.1:{port}",
               SOPBOT_LOG_FORMAT="json")
    set_operator_password(env, workdir, env["SOPBOT_OPERATORS"].split(",")[0])
    with ExitStack() as stack:
        url, log = f"http://127.0.0.1:{port}", workdir / "serve.log"
        stack.enter_context(process(["serve"], env, workdir, log, f"{url}/healthz"))
        yield Target("sqlite", [url], f"{url}/wecom-sim", env, [log], workdir)


SIM_SECRET = "attack-sim-agent-secret"


@contextmanager
def postgresql_replicas(workdir: Path, pg_url: str) -> Iterator[Target]:
    """Two `sopbot serve` replicas on a PostgreSQL schema of their own, a `sopbot sim` as
    WeCom."""
    with scratch_schema(pg_url, f"sopbot_attack_{os.getpid()}") as database, \
            ExitStack() as stack:
        sim_port, first_port = free_port(), free_port()
        env = _postgresql_env(database, sim_port, first_port, workdir)
        run(["migrate"], env, workdir)
        set_operator_password(env, workdir, "op_attacked")
        sim_url = f"http://127.0.0.1:{sim_port}"
        stack.enter_context(process(
            ["sim", "--port", str(sim_port), "--bot-url",
             f"http://127.0.0.1:{first_port}/wecom/callback"], env, workdir,
            workdir / "sim.log", f"{sim_url}/sim/clock", {"X-Sim-Key": env["SOPBOT_SIM_KEY"]}))
        first = f"http://127.0.0.1:{first_port}"
        stack.enter_context(process(["serve", "--port", str(first_port)], env, workdir,
                                    workdir / "serve-1.log", f"{first}/healthz"))
        second, second_log = serve(stack, env, workdir, "serve-2")
        yield Target("postgresql", [first, second], sim_url, env,
                     [workdir / "serve-1.log", second_log], workdir)


def _postgresql_env(database: str, sim_port: int, first_port: int,
                    workdir: Path) -> dict[str, str]:
    return {
        "SOPBOT_DATABASE_URL": database,
        "WECOM_CORP_ID": "wwattack000000001", "WECOM_CALLBACK_TOKEN": "attackToken",
        "WECOM_CALLBACK_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        "WECOM_AGENT_ID": "1000002", "WECOM_AGENT_SECRET": SIM_SECRET,
        "WECOM_API_BASE": f"http://127.0.0.1:{sim_port}",
        "SOPBOT_SECRET_KEY": "attack-secret-key-0123456789",
        "SOPBOT_API_KEY": "attack-api-key-0123456789", "SOPBOT_OPERATORS": "op_attacked",
        "SOPBOT_PUBLIC_URL": f"http://127.0.0.1:{first_port}", "SOPBOT_LOG_FORMAT": "json",
        "SOPBOT_FLOWS": str(REPO / "sop_flows"), "SOPBOT_KEYWORDS": str(REPO / "keywords.yaml"),
        "SOPBOT_PHOTO_DIR": str(workdir / "photos"), "SOPBOT_SCHEDULER": "false",
        "SOPBOT_SIM_KEY": "attack-sim-key-0123456789",
        "SOPBOT_SIM_MEMBERS": "zhangsan,lisi,staff01,op_attacked",
    }


def member_with_a_link(target: Target, external_userid: str) -> str:
    """A person adds a staff member (the simulator sends the real callback); the welcome WeCom
    receives carries their verification link, whose path this returns."""
    added = target.sim("POST", "scenarios/friend_add",
                       json={"userid": "zhangsan", "external_userid": external_userid,
                             "state": "douyin"})
    assert added.status_code == 200, added.text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sent = target.sim("GET", "requests",
                          params={"path": "externalcontact/send_welcome_msg"}).json()
        for request in sent["requests"]:
            found = VERIFY_LINK.search(str(request.get("body")))
            if found and request.get("errcode") == 0 and _member_of(
                    target, found.group(0)) == external_userid:
                return found.group(0)
        time.sleep(0.2)
    raise AssertionError(f"no welcome with a verification link for {external_userid}")


def _member_of(target: Target, link: str) -> str:
    links = VerifyLinks(target.env["SOPBOT_SECRET_KEY"], target.url, 3600)
    return links.member_of(link.rsplit("/", 1)[1])


def submit_verification(target: Target, link: str, phone: str) -> httpx.Response:
    """The member submits the H5 form with a shop photo, as a phone's browser does."""
    return httpx.post(f"{target.url}{link}", timeout=30,
                      data={"phone": phone, "identity_type": "physical_shop", "region": "广东"},
                      files=[("photos", ("shop.jpg", SHOP_PHOTO, "image/jpeg"))])
