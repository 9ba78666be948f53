"""`sopbot demo` end to end, in one process: a fresh SQLite file and secrets (workspace.py),
the service under uvicorn with the WeCom simulator built in (as `sopbot serve` runs without
credentials), the operators' groundwork, the population pushed through the funnel, the
fast-forwarded calendar, the reports, and the console left running unless `exit`."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, redirect_stderr
from dataclasses import dataclass, field
from datetime import date
from typing import TextIO

import httpx
import uvicorn

from app.engine.config import Settings
from app.engine.db import set_clock, utcnow
from app.engine.logs import configure_logging
from app.faces.demo import output, phases, summary
from app.faces.demo.calendar_days import groundwork_at
from app.faces.demo.console_login import make_login
from app.faces.demo.options import Options
from app.faces.demo.output import Progress
from app.faces.demo.population import Population, generate
from app.faces.demo.texts import DemoTexts, load_texts
from app.faces.demo.wire import CannotStart, DemoError, Wire
from app.faces.demo.workspace import (
    OPERATOR,
    Workspace,
    demo_settings,
    ideal_size_for,
    prepare,
    write_env,
)
from app.faces.sim.config import SimSettings
from app.faces.web.main import create_app
from app.faces.web.runtime import Runtime
from app.faces.web.server_options import server_options
from app.flows import load_flows


@dataclass
class Result:
    workspace: Workspace
    settings: Settings
    funnel: dict[str, int] = field(default_factory=dict)  # every channel, by step
    days: list[str] = field(default_factory=list)  # the per-day lines
    wecom: dict[str, int] = field(default_factory=dict)  # requests WeCom accepted, by API
    password: str = ""  # the demo operator's console password
    first_day: date | None = None  # the first simulated day (None: no days)


@dataclass(frozen=True)
class Demo:
    """One run's inputs, made before the service starts (a bad flow file stops it there)."""

    options: Options
    population: Population
    texts: DemoTexts
    ws: Workspace
    progress: Progress
    kf_account: str  # the simulator's 微信客服 account members write to

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.options.port}"


async def run(options: Options, out: TextIO | None = None) -> Result:
    """The whole demo, its lines on `out` (default: stdout as it is now). With `options.exit`
    it returns once the reports are printed; else it serves until stopped (Ctrl-C)."""
    if not _port_free(options.port):
        raise CannotStart(f"port {options.port} is in use; choose another with --port")
    flows = load_flows(options.flows)
    population = generate(options.members, options.seed, flows.funnel,
                          list(flows.verify.regions))
    ws = prepare(options.root, options.flows, ideal_size_for(options.members))
    robots = {target.robot for target in flows.calendar.internal.values() if target.robot}
    settings, sim = demo_settings(ws, options.port, options.keywords, robots)
    write_env(ws, settings)
    demo = Demo(options, population, load_texts(), ws,
                Progress(out or sys.stdout, total=5), sim.kf_accounts[0])
    output.header(demo.progress, options, ws, demo.url)
    with _logs(options.log_to_file, ws, settings), _clock_at_week_start(options.days):
        return await _serve(demo, settings, sim)


async def _serve(demo: Demo, settings: Settings, sim: SimSettings) -> Result:
    async with _serving(settings, sim) as (runtime, server):
        work = asyncio.create_task(_demo(demo, runtime))
        await asyncio.wait({work, server}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            work.cancel()
            raise DemoError("the service stopped before the demo finished")
        result = work.result()
        output.finished(demo.progress)
        if not demo.options.exit:
            output.console(demo.progress, demo.url, OPERATOR, result.password, demo.ws,
                           result.first_day)
            await server  # until Ctrl-C
    return result


@contextmanager
def _clock_at_week_start(days: int) -> Iterator[None]:
    """The service's clock at the morning before the simulated week while the demo plays it
    (set before the service starts: it only ever moves forward), the wall clock after."""
    if days:
        set_clock(groundwork_at(days))
    try:
        yield
    finally:
        set_clock(None)


@contextmanager
def _logs(to_file: bool, ws: Workspace, settings: Settings) -> Iterator[None]:
    """The service's log lines (warnings and up, secrets blanked) into the demo's log file:
    the terminal shows the demo's own lines only. Everything written to stderr goes there
    meanwhile (structlog writes to whatever sys.stderr is at the time)."""
    if not to_file:
        yield
        return
    with ws.log.open("w", encoding="utf-8") as stream, redirect_stderr(stream):
        configure_logging(settings.log_level, settings.log_format, settings.secret_values())
        yield


@asynccontextmanager
async def _serving(settings: Settings, sim: SimSettings,
                   ) -> AsyncIterator[tuple[Runtime, asyncio.Task[None]]]:
    """The service under uvicorn, as `sopbot serve` runs it; stopped on the way out."""
    app = create_app(settings, simulator=sim)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.port,
                                           lifespan="on", **server_options(settings)))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            raise DemoError("the service did not start; its log says why")
        await asyncio.sleep(0.02)
    try:
        yield app.state.runtime, task
    finally:
        server.should_exit = True
        await task


async def _demo(demo: Demo, runtime: Runtime) -> Result:
    options, progress = demo.options, demo.progress
    keys = runtime.settings.api_key, runtime.settings.sim_key
    assert keys[0] is not None and keys[1] is not None  # workspace.py always makes both
    async with httpx.AsyncClient(base_url=demo.url, timeout=30, trust_env=False) as http:
        wire = Wire(http, keys[0].get_secret_value(), keys[1].get_secret_value(), runtime.db)
        await wire.set_clock(utcnow())  # WeCom's clock to the service's (the week's start)
        await phases.prepare_wecom(wire, runtime, demo.texts, max(options.days, 1), progress)
        arrivals = phases.Arrivals(wire, demo.texts, demo.kf_account)
        first, days = await phases.play_week(wire, runtime, demo.population, arrivals,
                                             options.days, options.seed, progress)
        await phases.totals(wire, demo.population, arrivals.tally, progress)
        return await _close(demo, wire, runtime, first, days)


async def _close(demo: Demo, wire: Wire, runtime: Runtime, first: date | None,
                 days: list[str]) -> Result:
    demo.progress.start("reports")
    password = await make_login(runtime.db, OPERATOR)
    counts = await summary.funnel_counts(runtime.db)
    received = await summary.received(wire)
    demo.progress.done("funnel and calendar below")
    await output.reports(demo.progress, runtime.db, demo.ws, first, received)
    return Result(demo.ws, runtime.settings, counts, days, received, password, first)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
