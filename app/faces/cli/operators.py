"""`sopbot operators ...`: the console accounts of the userids in SOPBOT_OPERATORS."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from app.faces.cli.support import EnvFile, cli_settings, fail, run_on_database

if TYPE_CHECKING:
    from datetime import datetime

operators = typer.Typer(help="Console accounts of the operators in SOPBOT_OPERATORS.",
                        no_args_is_help=True)


@operators.command("passwd")
def passwd(userid: Annotated[str, typer.Argument(help="An operator's WeCom userid.")],
           password_stdin: Annotated[bool, typer.Option(
               "--password-stdin", help="Read the password from the first line of stdin.")
           ] = False,
           env_file: EnvFile = None) -> None:
    """Set an operator's console password (their open console sessions end)."""
    from app.faces.console.accounts import MIN_LENGTH

    if userid not in cli_settings(env_file).operators:
        fail(f"{userid!r} is not in SOPBOT_OPERATORS; add it there first")
    password = _read_password(password_stdin)
    if len(password) < MIN_LENGTH:
        fail(f"the password must have at least {MIN_LENGTH} characters")
    run_on_database(_store, env_file, userid, password)
    typer.echo(f"console password set for {userid}")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    # Hidden, and typed twice: a typo would lock the operator out.
    return typer.prompt("New console password", hide_input=True, confirmation_prompt=True)


async def _store(database_url: str, userid: str, password: str) -> None:
    from app.engine.db import Database
    from app.faces.console.accounts import set_password

    db = Database(database_url)
    try:
        async with db.unit_of_work() as session:
            await set_password(session, userid, password)
    finally:
        await db.dispose()


@operators.command("list")
def list_operators(env_file: EnvFile = None) -> None:
    """Each operator in SOPBOT_OPERATORS and whether they can log in to the console."""
    configured = cli_settings(env_file).operators
    changed = run_on_database(_password_dates, env_file)
    for line in account_lines(configured, changed):
        typer.echo(line)


async def _password_dates(database_url: str) -> dict[str, datetime]:
    from sqlalchemy import select

    from app.engine.db import Database
    from app.operators.models import ConsoleOperator

    db = Database(database_url)
    try:
        async with db.reader() as session:
            rows = await session.execute(select(ConsoleOperator.userid,
                                                ConsoleOperator.changed_at))
            return {userid: changed_at for userid, changed_at in rows}
    finally:
        await db.dispose()


def account_lines(configured: frozenset[str], changed: dict[str, datetime]) -> list[str]:
    """One line per userid, configured or with a stored password."""
    from app.faces.console.periods import SHANGHAI

    if not configured and not changed:
        return ["no operators: set SOPBOT_OPERATORS, then `sopbot operators passwd USERID`"]
    lines = []
    for userid in sorted(configured | set(changed)):
        at = changed.get(userid)
        if at is None:
            lines.append(f"{userid}  no password: run `sopbot operators passwd {userid}`")
            continue
        when = f"password set {at.astimezone(SHANGHAI):%Y-%m-%d %H:%M} (Asia/Shanghai)"
        note = "" if userid in configured else "; not in SOPBOT_OPERATORS: cannot log in"
        lines.append(f"{userid}  {when}{note}")
    return lines
