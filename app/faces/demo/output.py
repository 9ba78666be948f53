"""What the demo prints: numbered step lines while it runs, then the reports and how to look
around. Only this goes to the terminal; the service's logs go to the demo's log file."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO

from app.engine.config import SHANGHAI
from app.engine.db import Database
from app.faces.demo import summary
from app.faces.demo.options import Options
from app.faces.demo.workspace import Workspace, ideal_size_for


class Progress:
    """Step lines: the title when a step starts; what it counted and its time when it ends."""

    def __init__(self, out: TextIO, total: int) -> None:
        self.out, self.total, self.n = out, total, 0
        self.began = self.started = time.monotonic()

    def start(self, title: str) -> None:
        self.n += 1
        self.started = time.monotonic()
        self.write(f"[{self.n}/{self.total}] {title:<18} ", end="")

    def done(self, detail: str) -> None:
        self.write(f"{detail}  ({time.monotonic() - self.started:.1f} s)")

    def write(self, text: str = "", end: str = "\n") -> None:
        self.out.write(text + end)
        self.out.flush()


def header(progress: Progress, options: Options, ws: Workspace, url: str) -> None:
    progress.write(f"sopbot demo: {options.members} members, {options.days} simulated days, "
                   f"seed {options.seed}")
    progress.write(f"  database  {_shown(ws.db)} (new every run)")
    progress.write(f"  logs      {_shown(ws.log)} (the service's warnings and errors)")
    progress.write(f"  service   {url} (WeCom: the simulator built into it)")
    progress.write(f"  groups    ideal size {ideal_size_for(options.members)} (sop_flows' sizes "
                   f"scaled to the population, in {_shown(ws.flows)})")
    progress.write()


async def reports(progress: Progress, db: Database, ws: Workspace, first_day: date | None,
                  received: dict[str, int]) -> None:
    """The funnel by channel, what WeCom received, the calendar's confirmation report."""
    env = f"--env-file {_shown(ws.env)}"
    progress.write()
    progress.write(f"Funnel by channel: people per step (`sopbot funnel --by channel {env}` "
                   "adds the conversions)")
    for line in await summary.funnel_table(db):
        progress.write("  " + line)
    progress.write()
    progress.write(f"WeCom (the simulator) accepted: {summary.received_line(received)}")
    if first_day is not None:
        progress.write()
        progress.write(f"Calendar mass tasks (`sopbot calendar report {env}`)")
        for line in await summary.calendar_lines(db, first_day):
            progress.write("  " + line)


def console(progress: Progress, url: str, operator: str, password: str,
            ws: Workspace, first_day: date | None) -> None:
    progress.write()
    progress.write(f"Console   {url}/console")
    progress.write(f"Login     {operator} / {password}   (new every run)")
    if first_day is not None:  # the console's "last 7 days" end today: one short of the week
        yesterday = datetime.now(SHANGHAI).date() - timedelta(days=1)
        progress.write(f"The week  {url}/console/funnel?period=custom&start={first_day}"
                       f"&end={yesterday}")
    progress.write(f"More      sopbot groups list --env-file {_shown(ws.env)}   "
                   f"(and funnel --by slot, calendar report, ...)")
    progress.write("Serving until Ctrl-C.")


def finished(progress: Progress) -> None:
    progress.write()
    progress.write(f"Demo finished in {time.monotonic() - progress.began:.0f} s.")


def _shown(path: Path) -> str:
    """A path as short as it can be said from the working directory."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
