"""`sopbot codes ...` and `sopbot funnel`: the funnel's commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from app.faces.cli.support import EnvFile, contact_settings, fail, run_on_database

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from app.engine.config import Settings
    from app.flows import Flows
    from app.funnel.codes import CodeResult
    from app.funnel.flows import FunnelFlows
    from app.koc.funnel_steps import ReferrerSteps

codes = typer.Typer(help="联系我 codes, one per (channel, slot) declared in sop_flows/funnel.yaml.",
                    no_args_is_help=True)


@codes.command("sync")
def sync(env_file: EnvFile = None,
         delete_stale: Annotated[bool, typer.Option(
             "--delete-stale", help="Delete codes no longer declared, in WeCom and here.")] = False,
         ) -> None:
    """Create or update one 联系我 code per declared (channel, slot); exit 1 if any failed."""
    from app.funnel.codes import FAILED

    settings = contact_settings(env_file, "codes sync")
    results = run_on_database(_sync, env_file, settings, _funnel_flows(settings), delete_stale)
    for result in results:
        typer.echo(result.line())
    failed = sum(result.outcome == FAILED for result in results)
    if failed:
        typer.echo(f"sopbot: {failed} code(s) failed; fix them and run `sopbot codes sync` again",
                   err=True)
        raise typer.Exit(1)


async def _sync(database_url: str, settings: Settings, funnel: FunnelFlows,
                delete_stale: bool) -> list[CodeResult]:
    from app.engine.db import Database
    from app.engine.wecom.wiring import build_wecom
    from app.funnel.codes import sync_codes

    db = Database(database_url)
    http, wecom, _ = build_wecom(settings, db)
    try:
        return await sync_codes(db, wecom, funnel, delete_stale=delete_stale)
    finally:
        await http.aclose()
        await db.dispose()


def _funnel_flows(settings: Settings) -> FunnelFlows:
    from app.engine.yamlconf import ConfigFileError
    from app.flows import load_flows

    try:
        return load_flows(settings.flows_path).funnel
    except ConfigFileError as exc:
        fail(str(exc))


@codes.command("list")
def list_codes(env_file: EnvFile = None) -> None:
    """Print the stored codes: state, config_id, QR URL, last sync."""
    typer.echo("\n".join(run_on_database(_list, env_file)))


async def _list(database_url: str) -> list[str]:
    from app.engine.db import Database
    from app.funnel.codes import list_lines, stored_codes

    db = Database(database_url)
    try:
        return list_lines(await stored_codes(db))
    finally:
        await db.dispose()


def report(env_file: EnvFile = None,
           by: Annotated[str | None, typer.Option(
               help="Group by channel, slot, segment or region; `referrer`: the referral "
                    "steps of each recommender (sop_flows/koc.yaml).")] = None,
           since: Annotated[str, typer.Option(help="Period, e.g. 24h, 7d, 30d.")] = "7d",
           ) -> None:
    """Funnel counts and step-to-step conversion."""
    from app.funnel.report import ReportError, funnel_report, parse_by, parse_since

    if by == REFERRER:
        return by_referrer(env_file, since)
    try:
        parse_by(by)
        parse_since(since)
    except ReportError as exc:
        fail(str(exc))
    typer.echo(run_on_database(funnel_report, env_file, by, since, _labels(env_file, by)))


REFERRER = "referrer"


def by_referrer(env_file: Path | None, since: str) -> None:
    """The referral steps of each recommender whose referrals came in the period (their
    friend adds), as app/koc/funnel_steps.py counts them; the programme must be configured."""
    from app.engine.db import utcnow
    from app.funnel.report import ReportError, parse_since

    try:
        period = parse_since(since)
    except ReportError as exc:
        fail(str(exc))
    if _flows(env_file).koc is None:
        fail("--by referrer: no referral programme (sop_flows/koc.yaml is absent)")
    rows = run_on_database(_referrers, env_file, utcnow() - period)
    typer.echo(f"referral steps by referrer, last {since} (by friend add)")
    typer.echo("\n".join(referrer_line(row) for row in rows) or "  no referrals in the period")


async def _referrers(database_url: str, since: datetime) -> list[ReferrerSteps]:
    from app.engine.db import Database
    from app.koc.funnel_steps import by_referrer as steps_by_referrer

    db = Database(database_url)
    try:
        async with db.reader() as session:
            return await steps_by_referrer(session, since)
    finally:
        await db.dispose()


def referrer_line(row: ReferrerSteps) -> str:
    rejected = f"rejected {row.rejected_total}" + (" (" + ", ".join(
        f"{reason} {n}" for reason, n in sorted(row.rejected.items())) + ")"
        if row.rejected else "")
    revoked = f" (+{row.revoked} revoked)" if row.revoked else ""
    return (f"  {row.name}: referred {row.referred}, verified {row.verified}, "
            f"joined {row.joined}, credited {row.credited}{revoked}, flagged {row.flagged}, "
            f"pending {row.pending}, {rejected}")


def _flows(env_file: Path | None) -> Flows:
    from app.engine.config import ConfigError, FlowsSettings, load_settings
    from app.engine.yamlconf import ConfigFileError
    from app.flows import load_flows

    try:
        return load_flows(load_settings(FlowsSettings, env_file).flows_path)
    except (ConfigError, ConfigFileError) as exc:
        fail(str(exc))


def _labels(env_file: Path | None, by: str | None) -> dict[str, str]:
    """The group values' names from sop_flows/ (SOPBOT_FLOWS), as the console shows them."""
    from app.engine.config import ConfigError, FlowsSettings, load_settings
    from app.engine.yamlconf import ConfigFileError
    from app.flows import load_flows
    from app.funnel.labels import value_labels

    if by is None:  # all events together: no group to name (and no flow file to need)
        return {}
    try:
        return value_labels(load_flows(load_settings(FlowsSettings, env_file).flows_path), by)
    except (ConfigError, ConfigFileError) as exc:
        fail(str(exc))
