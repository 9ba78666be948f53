"""`sopbot users ...`: the platform's user directory (phone → platform user id)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.faces.cli.support import EnvFile, fail, run_on_database

users = typer.Typer(help="The platform's user directory, matched against members' phones.",
                    no_args_is_help=True)


@users.command("import")
def import_users(file: Annotated[Path, typer.Argument(help="CSV: platform_user_id,phone[,name]")],
                 env_file: EnvFile = None) -> None:
    """Add or update platform users from a CSV file; bad lines are listed and skipped.

    Exit status 1 when some lines were skipped (the good ones are imported all the same)."""
    from app.directory.admin import import_file
    from app.directory.csvfile import parse_csv

    try:
        with file.open(encoding="utf-8-sig", newline="") as handle:  # -sig: Excel's BOM
            parsed = parse_csv(handle)
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {type(exc).__name__}")
    result, conflicts = run_on_database(import_file, env_file, parsed)
    for line, problem in sorted([*parsed.errors, *conflicts]):
        typer.echo(f"{file}:{line}: {problem}", err=True)
    typer.echo(f"imported {result.created} new, {result.updated} updated, "
               f"{result.unchanged} unchanged, {len(parsed.errors) + len(conflicts)} skipped")
    if parsed.errors or conflicts:
        raise typer.Exit(1)
