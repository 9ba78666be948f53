"""`sopbot calendar preview` and `report`."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from app.faces.cli.support import EnvFile, cli_settings, fail, run_on_database

if TYPE_CHECKING:
    from app.engine.config import Settings

calendar = typer.Typer(help="The posting calendar (sop_flows/calendar.yaml).",
                       no_args_is_help=True)


@calendar.command("preview")
def preview(env_file: EnvFile = None,
            days: Annotated[int, typer.Option(min=1, max=31, help="How many days.")] = 7,
            segment: Annotated[str | None, typer.Option(help="Only this segment.")] = None,
            start: Annotated[str | None, typer.Option(
                "--from", help="First day, YYYY-MM-DD (default: today, Asia/Shanghai).")] = None,
            ) -> None:
    """Print what would be posted where and through which transport, sending nothing."""
    from datetime import datetime

    from app.engine.config import SHANGHAI
    from app.flows import load_flows

    settings = cli_settings(env_file)
    try:
        first = date.fromisoformat(start) if start else datetime.now(SHANGHAI).date()
    except ValueError:
        fail(f"--from {start!r} is not a date like 2026-12-01")
    segments = load_flows(settings.flows_path).calendar.segments
    if segment is not None and segment not in segments:
        fail(f"--segment {segment!r}: not in sop_flows/calendar.yaml ({', '.join(segments)})")
    typer.echo("\n".join(run_on_database(_preview, env_file, settings, first, days, segment)))


async def _preview(database_url: str, settings: Settings, first: date, days: int,
                   segment: str | None) -> list[str]:
    from app.calendar.preview import preview as plan
    from app.engine.db import Database
    from app.flows import load_flows

    db = Database(database_url)
    try:
        flows = load_flows(settings.flows_path)
        async with db.reader() as session:
            return await plan(session, flows.calendar, first, days, segment, flows.onboarding,
                              flows.talks)
    finally:
        await db.dispose()


@calendar.command("report")
def report(env_file: EnvFile = None,
           since: Annotated[str, typer.Option(help="Period, e.g. 24h, 7d, 30d.")] = "7d",
           ) -> None:
    """The calendar's mass tasks: confirmed, missed and open, per owner and per post."""
    from app.funnel.report import ReportError, parse_since

    try:
        period = parse_since(since)
    except ReportError as exc:
        fail(str(exc))
    typer.echo("\n".join(run_on_database(_report, env_file, period)))


async def _report(database_url: str, period: timedelta) -> list[str]:
    from app.calendar.tracking import report as task_report
    from app.engine.db import Database, utcnow

    db = Database(database_url)
    try:
        async with db.reader() as session:
            return await task_report(session, utcnow() - period)
    finally:
        await db.dispose()
