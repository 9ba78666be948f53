"""`sopbot archive status|replay`: how current the chat archive reader is, and opening the
quarantined records again once what refused them is fixed (a private key added, say)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from app.faces.cli.support import EnvFile, cli_settings, fail, run_on_database

if TYPE_CHECKING:
    from app.engine.config import Settings

archive = typer.Typer(help="The chat archive (会话内容存档) reader.", no_args_is_help=True)


@archive.command("status")
def status(env_file: EnvFile = None) -> None:
    """Where the reader stands: its seq, lag, seq gaps and the quarantined records."""
    settings = cli_settings(env_file)
    for line in run_on_database(_status, env_file, settings):
        typer.echo(line)


async def _status(database_url: str, settings: Settings) -> list[str]:
    from sqlalchemy import select

    from app.archive.models import ArchiveQuarantine
    from app.archive.status import archive_status
    from app.engine.db import Database, utcnow

    db = Database(database_url)
    try:
        async with db.reader() as session:
            found = await archive_status(session, utcnow())
            waiting = list(await session.scalars(select(ArchiveQuarantine).where(
                ArchiveQuarantine.replayed_at.is_(None)).order_by(ArchiveQuarantine.seq)))
    finally:
        await db.dispose()
    if found is None:
        return ["no chat archive reader has run on this database (WECOM_ARCHIVE_SECRET unset?)"]
    lag = "never read to the end" if found.lag_s is None else f"{found.lag_s / 3600:.1f} h"
    late = " (over SOPBOT_ARCHIVE_MAX_LAG_H)" if found.lagging(settings.archive_max_lag_h) else ""
    lines = [f"seq {found.seq}, lag {lag}{late}, {found.gaps} seq(s) missing, "
             f"{found.quarantined} quarantined, {found.failures} failed read(s) in a row"]
    if found.last_error:
        lines.append(f"last error: {found.last_error}")
    lines += [f"  quarantined seq {q.seq} {q.msgid} (publickey_ver {q.publickey_ver}): {q.reason}"
              for q in waiting]
    return lines


@archive.command("replay")
def replay(env_file: EnvFile = None) -> None:
    """Open the quarantined records again; those that open now are stored like any page."""
    settings = cli_settings(env_file)
    if settings.archive_secret is None:
        fail("archive replay needs WECOM_ARCHIVE_SECRET (and SOPBOT_ARCHIVE_KEYS)")
    replayed, refused = run_on_database(_replay, env_file, settings)
    typer.echo(f"{replayed} record(s) replayed, {refused} still quarantined")
    if refused:
        raise typer.Exit(1)


async def _replay(database_url: str, settings: Settings) -> tuple[int, int]:
    import handlers
    from app.archive.reader import ArchiveReader
    from app.engine.bot.env import Env
    from app.engine.db import Database
    from app.engine.wecom.wiring import build_archive_source, build_wecom
    from app.flows import load_flows

    db = Database(database_url)
    http, wecom, _ = build_wecom(settings, db)
    env = Env(settings, load_flows(settings.flows_path), db, wecom)
    reader = ArchiveReader(db, build_archive_source(settings, wecom), settings,
                           handlers.build_router().archive_page_steps(env))
    try:
        return await reader.replay()
    finally:
        await reader.source.close()
        await http.aclose()
        await db.dispose()
