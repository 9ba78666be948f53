"""The `sopbot` command: serve, migrate, check.

Configuration problems end the command with one line on stderr naming what is wrong and exit
status 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from app.config import ConfigError, DatabaseSettings, Settings, load_settings
from app.db import safe_url
from app.yamlconf import ConfigFileError

cli = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="sopbot: the WeCom bot service for B2B community operators.")

EnvFile = Annotated[Path | None, typer.Option("--env-file", help="Read variables from this file.")]


def fail(message: str) -> NoReturn:
    typer.echo(f"sopbot: {message}", err=True)
    raise typer.Exit(2)


def _settings(env_file: Path | None, **overrides: object) -> Settings:
    try:
        return load_settings(Settings, env_file, **overrides)
    except ConfigError as exc:
        fail(f"configuration error: {exc}")


@cli.command()
def serve(env_file: EnvFile = None,
          host: Annotated[str | None, typer.Option(help="Overrides SOPBOT_HOST.")] = None,
          port: Annotated[int | None, typer.Option(help="Overrides SOPBOT_PORT.")] = None) -> None:
    """Run the web service, inbox worker and (later) scheduler in one process."""
    import uvicorn

    from app.logs import configure_logging
    from app.main import SchemaNotCurrent, create_app, prepare_schema

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = _settings(env_file, **overrides)
    _check_files(settings)
    configure_logging(settings.log_level, settings.log_format, settings.secret_values())
    try:
        asyncio.run(prepare_schema(settings))
    except SchemaNotCurrent as exc:
        fail(str(exc))
    except Exception as exc:
        fail(f"cannot open database {safe_url(settings.database_url)}: {type(exc).__name__}")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                access_log=False, server_header=False)


@cli.command()
def migrate(env_file: EnvFile = None) -> None:
    """Bring the database schema to the latest revision (needs only SOPBOT_DATABASE_URL)."""
    from app import migrate as migrations

    try:
        settings = load_settings(DatabaseSettings, env_file)
    except ConfigError as exc:
        fail(f"configuration error: {exc}")
    try:
        migrations.upgrade(settings.database_url)
    except Exception as exc:
        fail(f"migration failed on {safe_url(settings.database_url)}: {type(exc).__name__}: {exc}")
    typer.echo(f"database {safe_url(settings.database_url)} is at revision "
               f"{migrations.current_revision(settings.database_url)}")


@cli.command()
def check(env_file: EnvFile = None) -> None:
    """Validate the configuration, sop_flows/ and keywords.yaml without starting anything."""
    settings = _settings(env_file)
    _check_files(settings)
    typer.echo("configuration, sop_flows and keywords are valid")


def _check_files(settings: Settings) -> None:
    from app.flows import load_flows
    from app.keywords import load_keywords

    try:
        load_flows(settings.flows_path)
        load_keywords(settings.keywords_path)
    except ConfigFileError as exc:
        fail(str(exc))


def main() -> None:
    cli(prog_name="sopbot")


if __name__ == "__main__":
    sys.exit(main())
