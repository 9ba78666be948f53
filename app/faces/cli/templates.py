"""`sopbot templates sync|list`: group welcome templates."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from app.faces.cli.support import EnvFile, contact_settings, run_on_database

if TYPE_CHECKING:
    from app.engine.config import Settings

templates = typer.Typer(help="Group welcome templates, one per segment "
                             "(sop_flows/group_welcome.yaml).", no_args_is_help=True)


@templates.command("sync")
def sync(env_file: EnvFile = None) -> None:
    """Create, edit or delete templates until WeCom holds what is declared; exit 1 if one
    failed."""
    settings = contact_settings(env_file, "templates sync")
    lines = run_on_database(_sync, env_file, settings)
    for line in lines:
        typer.echo(line)
    failed = sum(line.startswith("failed") for line in lines)
    if failed:
        typer.echo(f"sopbot: {failed} template(s) failed; run `sopbot templates sync` again",
                   err=True)
        raise typer.Exit(1)


async def _sync(database_url: str, settings: Settings) -> list[str]:
    from app.engine.db import Database
    from app.engine.wecom.wiring import build_wecom
    from app.flows import load_flows
    from app.groups.templates import sync_templates

    db = Database(database_url)
    http, wecom, _ = build_wecom(settings, db)
    try:
        return await sync_templates(db, wecom, load_flows(settings.flows_path))
    finally:
        await http.aclose()
        await db.dispose()


@templates.command("list")
def list_templates(env_file: EnvFile = None) -> None:
    """Print the stored templates: segment, template id, last sync."""
    typer.echo("\n".join(run_on_database(_list, env_file)))


async def _list(database_url: str) -> list[str]:
    from sqlalchemy import select

    from app.engine.db import Database
    from app.groups.models import WelcomeTemplate
    from app.groups.templates import stored_lines

    db = Database(database_url)
    try:
        async with db.reader() as session:
            rows = list(await session.scalars(select(WelcomeTemplate)
                                              .order_by(WelcomeTemplate.segment)))
        return stored_lines(rows)
    finally:
        await db.dispose()
