"""`sopbot tags sync`: the corp tags routed members get."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from app.faces.cli.support import EnvFile, contact_settings, fail, run_on_database

if TYPE_CHECKING:
    from app.engine.config import Settings

tags = typer.Typer(help="Corp tags for identity type, channel and region (sop_flows/routing.yaml).",
                   no_args_is_help=True)


@tags.command("sync")
def sync(env_file: EnvFile = None) -> None:
    """Create the missing tag groups and tags in WeCom and store every tag id."""
    settings = contact_settings(env_file, "tags sync")
    lines = run_on_database(_sync, env_file, settings)
    for line in lines:
        typer.echo(line)


async def _sync(database_url: str, settings: Settings) -> list[str]:
    from app.engine.db import Database
    from app.engine.wecom.errors import WeComError
    from app.engine.wecom.wiring import build_wecom
    from app.flows import load_flows
    from app.routing.tags import sync_tags

    db = Database(database_url)
    http, wecom, _ = build_wecom(settings, db)
    try:
        return await sync_tags(db, wecom, load_flows(settings.flows_path))
    except WeComError as exc:  # one line, as for every admin command
        fail(f"tags sync failed: {exc}")
    finally:
        await http.aclose()
        await db.dispose()
