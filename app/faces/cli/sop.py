"""`sopbot sop list|pause|resume`: the groups' onboarding runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.faces.cli.support import EnvFile, fail, run_on_database

sop = typer.Typer(help="Onboarding campaigns of the groups (sop_flows/onboarding_*.yaml).",
                  no_args_is_help=True)

Chat = Annotated[str, typer.Argument(help="The group's chat id.")]
CampaignName = Annotated[str | None, typer.Option(
    "--campaign", help="Only this campaign (default: all of the group's).")]


@sop.command("list")
def list_runs(env_file: EnvFile = None) -> None:
    """Every run: group (chat id and name), campaign, the day it started, the last day posted,
    status."""
    typer.echo("\n".join(run_on_database(_list, env_file)))


@sop.command("pause")
def pause(chat_id: Chat, campaign: CampaignName = None, env_file: EnvFile = None) -> None:
    """Stop a group's run(s) from posting until resumed (its days go on counting)."""
    _set(chat_id, campaign, env_file, "paused")


@sop.command("resume")
def resume(chat_id: Chat, campaign: CampaignName = None, env_file: EnvFile = None) -> None:
    """Let a paused run post again."""
    _set(chat_id, campaign, env_file, "active")


def _set(chat_id: str, campaign: str | None, env_file: Path | None, status: str) -> None:
    changed = run_on_database(_status, env_file, chat_id, campaign, status)
    if not changed:
        fail(f"no {'paused' if status == 'active' else 'active'} run for group {chat_id}")
    typer.echo(f"{changed} run(s) {status}")


async def _list(database_url: str) -> list[str]:
    from sqlalchemy import select

    from app.calendar.models import SopRun
    from app.engine.db import Database
    from app.groups.models import CustomerGroup

    db = Database(database_url)
    try:
        async with db.reader() as session:
            runs = (await session.execute(
                select(SopRun, CustomerGroup.name)
                .outerjoin(CustomerGroup, CustomerGroup.chat_id == SopRun.chat_id)
                .order_by(SopRun.id))).all()
    finally:
        await db.dispose()
    if not runs:
        return ["no onboarding runs yet"]
    # The name last: Chinese names would break the columns' alignment.
    return [f"{r.chat_id:<24} {r.campaign:<8} started {r.started_on} day {r.last_day:>2} "
            f"{r.status:<6} {name or '(group not synced)'}" for r, name in runs]


async def _status(database_url: str, chat_id: str, campaign: str | None, status: str) -> int:
    from sqlalchemy import update

    from app.calendar.models import SopRun
    from app.engine.db import Database, rowcount

    wanted = "paused" if status == "active" else "active"
    query = update(SopRun).where(SopRun.chat_id == chat_id, SopRun.status == wanted)
    if campaign is not None:
        query = query.where(SopRun.campaign == campaign)
    db = Database(database_url)
    try:
        async with db.unit_of_work() as session:
            return rowcount(await session.execute(query.values(status=status)))
    finally:
        await db.dispose()
