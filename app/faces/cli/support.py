"""What every `sopbot` command shares: the --env-file option, the settings, running a job on the
database, and ending with one line on stderr (exit status 2) instead of a traceback.

It sits below app/faces/cli/main.py and the other command modules of app/faces/cli/, which
import it at the top: it imports neither them nor any domain, only the engine
(app.engine.config, app.engine.db; app.engine.logs and app.migrate inside the functions that
use them, so `sopbot --help` stays fast).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from app.engine.config import ConfigError, DatabaseSettings, Settings, load_settings
from app.engine.db import safe_url

EnvFile = Annotated[Path | None, typer.Option("--env-file", help="Read variables from this file.")]


def fail(message: str) -> NoReturn:
    """End the command: `sopbot: <message>` on stderr, exit status 2."""
    typer.echo(f"sopbot: {message}", err=True)
    raise typer.Exit(2)


def cli_settings(env_file: Path | None, **overrides: object) -> Settings:
    """The service's settings (the environment, then env_file), or one line if they are wrong."""
    try:
        return load_settings(Settings, env_file, **overrides)
    except ConfigError as exc:
        fail(f"configuration error: {exc}")


def contact_settings(env_file: Path | None, command: str) -> Settings:
    """Settings of a command that calls WeCom's contact APIs, with logging set up as `serve`
    does: on stderr with every secret redacted, so stdout keeps the result lines."""
    from app.engine.logs import configure_logging

    settings = cli_settings(env_file)
    if settings.contact_secret is None:
        fail(f"{command} needs WECOM_CONTACT_SECRET (or WECOM_AGENT_SECRET) to call WeCom")
    configure_logging(settings.log_level, settings.log_format, settings.secret_values())
    return settings


def database_url(env_file: Path | None) -> str:
    """SOPBOT_DATABASE_URL (the only setting some commands need), or one line if it is wrong."""
    try:
        return load_settings(DatabaseSettings, env_file).database_url
    except ConfigError as exc:
        fail(f"configuration error: {exc}")


def run_on_database(job: Any, env_file: Path | None, *args: Any) -> Any:
    """Run an async admin job on the configured database; one line if it cannot."""
    from app import migrate as migrations

    url = database_url(env_file)
    try:
        if migrations.current_revision(url) is None:
            fail(f"database {safe_url(url)} has no sopbot schema; run `sopbot migrate`")
        return asyncio.run(job(url, *args))
    except typer.Exit:
        raise
    except Exception as exc:
        fail(f"database error on {safe_url(url)}: {type(exc).__name__}")
