"""Options every `sopbot` command shares. A module of its own, importing no domain: the domains'
command modules import it at the top, while app/cli.py imports them (app/cli.py's helpers are
imported inside functions for that reason)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EnvFile = Annotated[Path | None, typer.Option("--env-file", help="Read variables from this file.")]
