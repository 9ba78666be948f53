"""The `sopbot` command: serve, migrate, check, sim, inbox, outbox, and the domains' commands
(registered here from their app/*/cli.py).

Configuration problems end the command with one line on stderr naming what is wrong and exit
status 2, never a traceback (app/faces/cli/support.py `fail`, shared with the domains' commands).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.engine.config import ConfigError, Settings, load_settings
from app.engine.db import safe_url
from app.engine.yamlconf import ConfigFileError, flatten
from app.faces.cli.support import EnvFile, cli_settings, database_url, fail, run_on_database

if TYPE_CHECKING:
    from app.flows import Flows

# Where `sopbot sim` writes a control key it made (the working directory: it has no database).
SIM_KEY_FILE = Path("sopbot-sim.key")

cli = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="sopbot: the WeCom bot service for B2B community operators.")


@cli.command()
def serve(env_file: EnvFile = None,
          host: Annotated[str | None, typer.Option(help="Overrides SOPBOT_HOST.")] = None,
          port: Annotated[int | None, typer.Option(help="Overrides SOPBOT_PORT.")] = None) -> None:
    """Run sopbot in one process: the web service (WeCom callbacks, verification pages,
    console, API), the inbox worker, the outbox sender, the 微信客服 reader and the scheduler
    (calendar, onboarding, lifecycle; one leader across replicas), each switched by its
    SOPBOT_* setting; with the built-in WeCom simulator when no WeCom secret is set (SQLite)."""
    import uvicorn

    from app.engine.logs import configure_logging
    from app.faces.web.main import SchemaNotCurrent, create_app, prepare_schema
    from app.faces.web.server_options import server_options, tune_gc

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = cli_settings(env_file, **overrides)
    _check_files(settings)
    key_given = settings.sim_key is not None
    settings, simulator = _maybe_simulated(settings)
    configure_logging(settings.log_level, settings.log_format, settings.secret_values())
    try:
        asyncio.run(prepare_schema(settings))
    except SchemaNotCurrent as exc:
        fail(str(exc))
    except Exception as exc:
        fail(f"cannot open database {safe_url(settings.database_url)}: {type(exc).__name__}")
    if simulator is not None:
        _announce_simulator(settings, key_given)
    app = create_app(settings, simulator=simulator)
    tune_gc()
    uvicorn.run(app, host=settings.host, port=settings.port, **server_options(settings))


def _maybe_simulated(settings: Settings) -> tuple[Settings, Any]:
    """The settings pointed at the built-in simulator and the simulator's, when it runs
    (app/faces/sim/embedded.py); else the settings as they are and None."""
    from app.faces.sim.embedded import (
        CredentialsRequired,
        ExposedSimulator,
        check_host,
        embedded_simulator,
    )

    try:
        simulated = embedded_simulator(settings)
        if simulated is not None:
            check_host(settings)
    except (CredentialsRequired, ExposedSimulator) as exc:
        fail(str(exc))
    return simulated or (settings, None)


def _announce_simulator(settings: Settings, key_given: bool) -> None:
    """Say the simulator runs, and hand its control key to the local operator (a file beside
    the database; the terminal, if any: app/faces/sim/keyfile.py). Never logged: the log redacts it
    like every secret."""
    from app.engine.logs import get_logger
    from app.faces.sim.embedded import MOUNT_PATH, key_file

    assert settings.sim_key is not None  # embedded_simulator always sets one
    get_logger("sopbot.cli").warning(
        "built_in_simulator", path=MOUNT_PATH,
        reason="no WeCom secret is set: WeCom calls go to the built-in simulator; "
               "nothing reaches WeCom")
    line = _handed_over(settings.sim_key.get_secret_value(), key_given, key_file(settings))
    typer.echo(f"built-in WeCom simulator at {MOUNT_PATH}: {line}")


def _handed_over(key: str, given: bool, path: Path) -> str:
    from app.faces.sim import keyfile

    try:
        return keyfile.hand_over(key, given, path)
    except OSError as exc:
        fail(f"cannot write the simulator's key file {path}: {exc.strerror}")


@cli.command()
def migrate(env_file: EnvFile = None) -> None:
    """Bring the database schema to the latest revision (needs only SOPBOT_DATABASE_URL)."""
    from app import migrate as migrations

    url = database_url(env_file)
    try:
        migrations.upgrade(url)
    except Exception as exc:
        fail(f"migration failed on {safe_url(url)}: {type(exc).__name__}: {exc}")
    typer.echo(f"database {safe_url(url)} is at revision {migrations.current_revision(url)}")


@cli.command()
def check(env_file: EnvFile = None) -> None:
    """Validate the configuration, sop_flows/ and keywords.yaml without starting anything."""
    from app.calendar.onboarding import campaign_notes
    from app.calendar.planner import cap_report

    settings = cli_settings(env_file)
    flows = _check_files(settings)
    typer.echo("configuration, sop_flows and keywords are valid")
    for line in cap_report(flows.calendar, flows.talks):
        typer.echo(f"note: calendar {line}")
    for line in flows.funnel.welcome.welfare_notes():
        typer.echo(f"warning: funnel {line}")
    for line in campaign_notes(flows.onboarding):
        typer.echo(f"warning: {line}")


@cli.command()
def sim(env_file: EnvFile = None,
        host: Annotated[str | None, typer.Option(help="Overrides SOPBOT_SIM_HOST.")] = None,
        port: Annotated[int | None, typer.Option(help="Overrides SOPBOT_SIM_PORT.")] = None,
        bot_url: Annotated[str | None,
                           typer.Option(help="Overrides SOPBOT_SIM_BOT_URL.")] = None) -> None:
    """Run the WeCom simulator: the API with its platform rules, faults and scenarios."""
    import uvicorn

    from app.engine.logs import configure_logging
    from app.faces.sim import create_sim_app

    # Passed under the variable names, so a bad option is reported like a bad variable.
    options = {"SOPBOT_SIM_HOST": host, "SOPBOT_SIM_PORT": port, "SOPBOT_SIM_BOT_URL": bot_url}
    settings = _sim_settings(env_file, **{k: v for k, v in options.items() if v is not None})
    configure_logging("info", "auto", settings.secret_values())
    app = create_sim_app(settings)
    given = settings.control_key is not None
    typer.echo("simulator: " + _handed_over(app.state.sim.control_key, given, SIM_KEY_FILE))
    uvicorn.run(app, host=settings.host, port=settings.port,
                log_config=None, access_log=False, server_header=False)


def _sim_settings(env_file: Path | None, **overrides: object) -> Any:
    from app.faces.sim.config import SimSettings

    try:
        return load_settings(SimSettings, env_file, **overrides)
    except ConfigError as exc:
        fail(f"configuration error: {exc}")


inbox_cli = typer.Typer(no_args_is_help=True, help="Inspect the inbox and requeue parked events.")
cli.add_typer(inbox_cli, name="inbox")


@inbox_cli.command("status")
def inbox_status(env_file: EnvFile = None) -> None:
    """Count inbox rows by status and list the most recent parked (failed) ones."""
    from app.engine.inbox.admin import show_status

    typer.echo(run_on_database(show_status, env_file))


@inbox_cli.command("retry")
def inbox_retry(ids: Annotated[list[int] | None,
                               typer.Argument(help="Row ids; none = all.")] = None,
                env_file: EnvFile = None) -> None:
    """Requeue parked rows with a fresh set of attempts; the running service picks them up."""
    from app.engine.inbox.admin import retry_failed

    count = run_on_database(retry_failed, env_file, ids or None)
    typer.echo(f"requeued {count} event(s)")


def _register_domain_commands() -> None:
    # Explicit registration of the domains' commands (their modules import only typer and
    # app/faces/cli/support.py at the top, so this loads no domain).
    from app.faces.cli.archive import archive
    from app.faces.cli.calendar import calendar
    from app.faces.cli.content import content_cli
    from app.faces.cli.demo import demo
    from app.faces.cli.directory import users
    from app.faces.cli.funnel import codes, report
    from app.faces.cli.groups import groups
    from app.faces.cli.koc import koc
    from app.faces.cli.operators import operators
    from app.faces.cli.routing import tags
    from app.faces.cli.sop import sop
    from app.faces.cli.templates import templates

    cli.add_typer(archive, name="archive")
    cli.add_typer(calendar, name="calendar")
    cli.add_typer(content_cli, name="content")
    cli.add_typer(operators, name="operators")
    cli.add_typer(codes, name="codes")
    cli.add_typer(sop, name="sop")
    cli.add_typer(groups, name="groups")
    cli.add_typer(koc, name="koc")
    cli.add_typer(tags, name="tags")
    cli.add_typer(templates, name="templates")
    cli.add_typer(users, name="users")
    cli.command("funnel")(report)
    cli.command("demo")(demo)


_register_domain_commands()

outbox_cli = typer.Typer(no_args_is_help=True,
                         help="Inspect outbox rows; retry or drop those an operator must decide.")
cli.add_typer(outbox_cli, name="outbox")


@outbox_cli.command("status")
def outbox_status(env_file: EnvFile = None) -> None:
    """Count outbox rows by status and list the dead and unknown-outcome ones."""
    from app.engine.outbox.admin import show_status

    typer.echo(run_on_database(show_status, env_file))


@outbox_cli.command("retry")
def outbox_retry(ids: Annotated[list[int], typer.Argument(help="Row ids.")],
                 env_file: EnvFile = None) -> None:
    """Send dead or unknown-outcome rows again, with a fresh set of attempts."""
    from app.engine.outbox.admin import retry_rows

    count = run_on_database(retry_rows, env_file, ids)
    typer.echo(f"requeued {count} message(s)")


@outbox_cli.command("drop")
def outbox_drop(ids: Annotated[list[int], typer.Argument(help="Row ids.")],
                reason: Annotated[str, typer.Option(help="Why; kept on the row.")],
                env_file: EnvFile = None) -> None:
    """Give up on pending or unknown-outcome rows for good."""
    from app.engine.outbox.admin import drop_rows

    count = run_on_database(drop_rows, env_file, ids, reason)
    typer.echo(f"dropped {count} message(s)")


def _check_files(settings: Settings) -> Flows:
    """The flows, once they and the keywords are known to be valid (else one line, exit 2)."""
    from app.flows import load_flows
    from app.keywords import load_keywords

    errors: list[ConfigFileError] = []
    flows = None
    try:
        flows = load_flows(settings.flows_path)
    except ConfigFileError as exc:
        errors.append(exc)
    try:  # checked even when the flows are not, so one run names every problem
        load_keywords(settings.keywords_path, set(flows.routing.segments) if flows else None)
    except ConfigFileError as exc:
        errors.append(exc)
    if errors or flows is None:
        fail(_listed([one for error in errors for one in flatten(error)]))
    return flows


def _listed(errors: list[ConfigFileError]) -> str:
    if len(errors) == 1:
        return str(errors[0])
    return f"{len(errors)} problems:\n" + "\n".join(f"  {error}" for error in errors)


def main() -> None:
    cli(prog_name="sopbot")


if __name__ == "__main__":
    main()
