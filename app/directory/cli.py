"""`sopbot users ...`: the platform's user directory (phone → platform user id)."""

from __future__ import annotations

import typer

users = typer.Typer(help="The platform's user directory, matched against members' phones.",
                    no_args_is_help=True)
