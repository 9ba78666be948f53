"""`sopbot groups sync|list`: the segments' group pools."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer

from app.faces.cli.support import EnvFile, cli_settings, contact_settings, fail, run_on_database

if TYPE_CHECKING:
    from app.archive.reports import OwnerFigures
    from app.engine.config import Settings
    from app.groups.overview import GroupOverview
    from app.groups.sync import SyncReport

groups = typer.Typer(help="Customer groups and each segment's 加入群聊 code "
                          "(sop_flows/routing.yaml); --stage lists groups by stage and health.")


@groups.command("sync")
def sync(env_file: EnvFile = None,
         full: Annotated[bool, typer.Option(
             "--full", help="Read every group again, not only the ones not seen yet.")] = False,
         ) -> None:
    """Read the customer groups, give each its segment, make or update every segment's join-way
    code; exit 1 if a group or a segment failed."""
    settings = contact_settings(env_file, "groups sync")
    report: SyncReport = run_on_database(_sync, env_file, settings, full)
    typer.echo(f"groups read from WeCom: {report.groups_read}")
    for line in report.lines:
        typer.echo(line)
    if report.unassigned:
        typer.echo(f"{len(report.unassigned)} group(s) match no segment's room_name: "
                   + ", ".join(report.unassigned[:10]))
    if report.failed:
        typer.echo(f"sopbot: {report.failed} group(s) or segment(s) failed; fix what the lines "
                   "say and run `sopbot groups sync` again", err=True)
        raise typer.Exit(1)


async def _sync(database_url: str, settings: Settings, full: bool) -> SyncReport:
    from app.engine.db import Database
    from app.engine.wecom.errors import WeComError
    from app.engine.wecom.wiring import build_wecom
    from app.flows import load_flows
    from app.groups.sync import sync_groups

    flows = load_flows(settings.flows_path)
    staff = sorted({s for channel in flows.funnel.channels.values() for s in channel.staff})
    db = Database(database_url)
    http, wecom, _ = build_wecom(settings, db)
    try:
        return await sync_groups(db, wecom, flows.routing, staff, full=full)
    except WeComError as exc:  # reading the groups failed: one line, as for every admin command
        fail(f"groups sync failed: {exc}")
    finally:
        await http.aclose()
        await db.dispose()


@groups.command("list")
def list_groups(env_file: EnvFile = None) -> None:
    """Per segment: its join-way QR and its groups (* in the pool), size against ideal."""
    settings = cli_settings(env_file)
    typer.echo("\n".join(run_on_database(_list, env_file, settings)))


async def _list(database_url: str, settings: Settings) -> list[str]:
    from app.engine.db import Database
    from app.flows import load_flows
    from app.groups.sync import pool_lines

    db = Database(database_url)
    try:
        return await pool_lines(db, load_flows(settings.flows_path).routing)
    finally:
        await db.dispose()


@groups.command("newcomers")
def list_newcomers(env_file: EnvFile = None,
                   day: Annotated[str | None, typer.Option(
                       help="The day, YYYY-MM-DD in Asia/Shanghai (default: today).")] = None,
                   segment: Annotated[str | None, typer.Option(
                       help="Only this segment's groups.")] = None) -> None:
    """The customers who joined each group on a day and are still in it."""
    from datetime import datetime

    from app.groups.newcomers import SHANGHAI

    try:
        wanted = date.fromisoformat(day) if day else datetime.now(SHANGHAI).date()
    except ValueError:
        fail(f"--day {day!r} is not a date like 2026-11-30")
    settings = cli_settings(env_file)
    typer.echo("\n".join(run_on_database(_newcomers, env_file, settings, wanted, segment)))


async def _newcomers(database_url: str, settings: Settings, day: date,
                     segment: str | None) -> list[str]:
    from app.engine.db import Database
    from app.flows import load_flows
    from app.groups.newcomers import newcomer_lines

    identities = load_flows(settings.flows_path).verify.identity_types
    db = Database(database_url)
    try:
        async with db.reader() as session:
            return await newcomer_lines(session, day, segment, identities)
    finally:
        await db.dispose()


@groups.callback(invoke_without_command=True)
def by_stage(ctx: typer.Context, env_file: EnvFile = None,
             stage: Annotated[str | None, typer.Option(
                 help="filling (not yet at its ideal size), strong, daily or weak (zombie "
                      "groups).")] = None) -> None:
    """`sopbot groups --stage weak`: the groups of a stage with their health, signals and last
    7 days of activity (from the chat archive, or marked unknown without it), and WeCom's
    per-owner figures beside the groups the archive does not cover."""
    if ctx.invoked_subcommand is not None:
        return
    from app.groups.lifecycle import STAGES

    if stage is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    if stage not in STAGES:
        fail(f"--stage {stage!r}: one of {', '.join(STAGES)}")
    settings = cli_settings(env_file)
    typer.echo("\n".join(run_on_database(_stages, env_file, settings, stage)))


async def _stages(database_url: str, settings: Settings, stage: str) -> list[str]:
    from app.engine.db import Database, utcnow
    from app.flows import load_flows
    from app.groups.overview import PAGE_MAX, lines, overview, owner_lines

    flows, now = load_flows(settings.flows_path), utcnow()
    db = Database(database_url)
    found: list[GroupOverview] = []
    owners: dict[str, OwnerFigures] = {}
    cursor: str | None = None
    try:
        async with db.reader() as session:
            while True:
                page = await overview(session, flows, now, stage=stage, cursor=cursor,
                                      limit=PAGE_MAX)
                found += page.groups
                owners |= page.owners
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
    finally:
        await db.dispose()
    if not found:
        return [f"no {stage} groups"]
    return lines(found) + owner_lines(owners)
