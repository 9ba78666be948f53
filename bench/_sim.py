"""The WeCom simulator as a subprocess for the benchmarks: `sopbot sim`, pinned to the second
core where there is one, with its own credentials and nothing of the caller's SOPBOT_*/WECOM_*."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
# The simulator's control key (app/faces/sim/access.py) for the benchmarks' own `sopbot sim`.
SIM_KEY = "bench-sim-control-key-0001"
SIM_HEADERS = {"X-Sim-Key": SIM_KEY}


def start_simulator(port: int, workdir: Path, env: dict[str, str],
                    core: int = 1) -> subprocess.Popen[bytes]:
    """`env`: the simulator's WECOM_* / SOPBOT_SIM_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SOPBOT_", "WECOM_"))}
    clean.update({"SOPBOT_LOG_LEVEL": "warning", "SOPBOT_SIM_KEY": SIM_KEY, **env})
    pin = ["taskset", "-c", str(core)] if len(os.sched_getaffinity(0)) > 1 else []
    log = (workdir / "sim.log").open("wb")
    return subprocess.Popen([*pin, sys.executable, "-m", "app.faces.cli.main", "sim",
                             "--port", str(port)],
                            cwd=REPO, env=clean, stdout=log, stderr=subprocess.STDOUT)


async def wait_ready(url: str, tries: int = 300) -> None:
    """Until `url` answers 200 (the simulator's /sim/clock, a server's /healthz)."""
    async with httpx.AsyncClient(trust_env=False, headers=SIM_HEADERS) as client:
        for _ in range(tries):
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")
