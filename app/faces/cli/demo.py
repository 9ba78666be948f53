"""`sopbot demo` (only typer and app/faces/cli/support.py at module level, as in
app/faces/cli/funnel.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from app.faces.cli.support import fail


def demo(members: Annotated[int, typer.Option(
             min=1, max=5000, help="People who add a staff member (the app's ad slots see "
                                   "many more).")] = 300,
         days: Annotated[int, typer.Option(
             min=0, max=31, help="Simulated days of the calendar and onboarding.")] = 7,
         port: Annotated[int, typer.Option(min=1, max=65535,
                                           help="Where the service listens.")] = 8000,
         seed: Annotated[int, typer.Option(help="The same seed, the same people.")] = 1,
         exit_: Annotated[bool, typer.Option(
             "--exit", help="Stop after the reports instead of serving the console.")] = False,
         ) -> None:
    """Service + built-in WeCom simulator + a synthetic population on a fresh SQLite file:
    the funnel end to end, a fast-forwarded calendar, the reports, then the console."""
    import asyncio
    import os
    from pathlib import Path

    from app.engine.yamlconf import ConfigFileError
    from app.faces.demo.options import Options
    from app.faces.demo.run import run
    from app.faces.demo.wire import CannotStart, DemoError

    flows = Path(os.environ.get("SOPBOT_FLOWS", "sop_flows"))
    keywords = Path(os.environ.get("SOPBOT_KEYWORDS", "keywords.yaml"))
    if not flows.is_dir() or not keywords.is_file():
        fail(f"demo: {flows}/ and {keywords} not found: run it in the sopbot checkout "
             "(or set SOPBOT_FLOWS and SOPBOT_KEYWORDS)")
    options = Options(members=members, days=days, port=port, seed=seed, exit=exit_,
                      flows=flows, keywords=keywords, log_to_file=True)
    try:
        asyncio.run(run(options))
    except KeyboardInterrupt:
        typer.echo("\nsopbot demo: stopped")
    except ConfigFileError as exc:
        fail(str(exc))
    except CannotStart as exc:
        fail(f"demo: {exc}")
    except DemoError as exc:
        typer.echo(f"\nsopbot demo: {exc} (the service's log: "
                   f"{options.root / 'sopbot-demo.log'})", err=True)
        raise typer.Exit(1) from None
