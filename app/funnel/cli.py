"""`sopbot codes ...` and `sopbot funnel`: the funnel's commands."""

from __future__ import annotations

import typer

codes = typer.Typer(help="联系我 codes, one per (channel, slot) declared in sop_flows/funnel.yaml.",
                    no_args_is_help=True)


def report() -> None:
    """Funnel counts and step-to-step conversion."""
    raise typer.Exit(1)
