"""`sopbot koc list|nominate|ranks|settle`: the recommender programme (sop_flows/koc.yaml) from
the command line. Each command needs the programme configured and says so in one line if not.

- `list`: every recommender with their first-touch referrals, credits and rewards;
- `nominate MEMBER_ID`: make a member a recommender (source `nominated:cli`) and request their
  code through the outbox: the running service makes it and sends it on;
- `ranks [--month YYYY-MM]`: earn the month's rank rewards (last month by default; once: a
  second run earns nothing) and print the month's rank rewards;
- `settle`: decide the pending referrals now, as the settle_referrals job does every minute.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

import typer

from app.faces.cli.support import EnvFile, fail, run_on_database

if TYPE_CHECKING:
    from pathlib import Path

    from app.engine.db import Database
    from app.flows import Flows
    from app.koc.recommenders import Enrolment
    from app.koc.report import RecommenderRow

koc = typer.Typer(help="The recommender programme (推荐官, sop_flows/koc.yaml).",
                  no_args_is_help=True)
MONTH = re.compile(r"20[0-9]{2}-(0[1-9]|1[0-2])")


def _flows(env_file: Path | None) -> Flows:
    """The flows with the programme in them, or one line saying what is missing."""
    from app.engine.config import ConfigError, FlowsSettings, load_settings
    from app.engine.yamlconf import ConfigFileError
    from app.flows import load_flows

    try:
        flows = load_flows(load_settings(FlowsSettings, env_file).flows_path)
    except (ConfigError, ConfigFileError) as exc:
        fail(str(exc))
    if flows.koc is None:
        fail("no referral programme: sop_flows/koc.yaml is absent (docs/koc.md)")
    return flows


async def _on_database(database_url: str, job: object, *args: object) -> object:
    """Run `job(db, *args)` on a Database that is closed afterwards."""
    from app.engine.db import Database

    db = Database(database_url)
    try:
        return await job(db, *args)  # type: ignore[operator]
    finally:
        await db.dispose()


@koc.command("list")
def list_recommenders(env_file: EnvFile = None) -> None:
    """Every recommender: name, source, code, referrals (first touches), credits, rewards."""
    _flows(env_file)
    lines = run_on_database(_on_database, env_file, _list)
    typer.echo("\n".join(lines) or "no recommenders yet")


async def _list(db: Database) -> list[str]:
    """The console's leaderboard (app/koc/report.py), page by page: the same numbers."""
    from app.koc.report import PAGE_MAX, leaderboard

    lines: list[str] = []
    async with db.reader() as session:
        while True:
            total, rows = await leaderboard(session, PAGE_MAX, offset=len(lines))
            lines += [_line(row) for row in rows]
            if not rows or len(lines) >= total:
                return lines


def _line(row: RecommenderRow) -> str:
    name = f"#{row.person.member_id}" + (f" {row.person.name}" if row.person.name else "")
    return (f"{name}: recommender {row.id}{'' if row.active else ' (inactive)'}, "
            f"source {row.source}, code {row.code}, referrals {row.counts.referred}, "
            f"credited {row.counts.credited}, rewards {len(row.rewards)}")


@koc.command("nominate")
def nominate(member_id: Annotated[int, typer.Argument(help="The member's id (#id).")],
             env_file: EnvFile = None) -> None:
    """Make a verified business member a recommender; exit 1 if they cannot be one."""
    flows = _flows(env_file)
    outcome, line = run_on_database(_on_database, env_file, _nominate, flows, member_id)
    typer.echo(line, err=outcome != "ok")
    if outcome != "ok":
        raise typer.Exit(1)


async def _nominate(db: Database, flows: Flows, member_id: int) -> tuple[str, str]:
    from app.engine.db import utcnow
    from app.koc import recommenders
    from app.members.models import Member

    assert flows.koc is not None
    async with db.unit_of_work() as session:
        member = await session.get(Member, member_id)
        if member is None:
            return "missing", f"sopbot: no member #{member_id}"
        done = await recommenders.enrol(session, member, "nominated:cli", utcnow(), flows.koc,
                                        flows.funnel)
    return _nominated(member_id, done)


def _nominated(member_id: int, done: Enrolment) -> tuple[str, str]:
    from app.koc.recommenders import COMING, FULL, NOT_ELIGIBLE, READY

    rec = done.recommender
    said = {READY: "is a recommender; their code is ready",
            COMING: "is a recommender; their code is requested (the running service makes it "
                    "and sends it on)",
            NOT_ELIGIBLE: "cannot be a recommender: only a verified business (linked, "
                          "approved) can",
            FULL: "is a recommender, but no code is free: codes.max codes exist already"}
    number = f" (recommender {rec.id}, {rec.short_id})" if rec is not None else ""
    ok = done.outcome in (READY, COMING)
    return ("ok" if ok else done.outcome,
            f"{'' if ok else 'sopbot: '}member #{member_id}{number} {said[done.outcome]}")


@koc.command("ranks")
def ranks(env_file: EnvFile = None,
          month: Annotated[str | None, typer.Option(
              help="The month, YYYY-MM (Asia/Shanghai); last month by default.")] = None,
          ) -> None:
    """Earn a finished month's rank rewards (once) and print that month's rank rewards."""
    from app.engine.db import utcnow
    from app.koc.rewards import previous_month
    from app.koc.stats import month_of

    flows = _flows(env_file)
    now = utcnow()
    month = month or previous_month(now)
    if not MONTH.fullmatch(month):
        fail(f"--month {month!r}: use YYYY-MM, e.g. {previous_month(now)}")
    if month >= month_of(now):
        fail(f"--month {month}: the month is not over yet (Asia/Shanghai)")
    earned, lines = run_on_database(_on_database, env_file, _ranks, flows, month)
    typer.echo(f"{month}: {earned} rank reward(s) earned now")
    typer.echo("\n".join(lines) or "  no rank rewards (no credited referrals that month, "
                                   "or koc.yaml has no ranks.rewards)")


async def _ranks(db: Database, flows: Flows, month: str) -> tuple[int, list[str]]:
    from app.engine.db import utcnow
    from app.koc.rewards import monthly_ranks
    from app.koc.stats import rank_rewards

    assert flows.koc is not None
    async with db.unit_of_work() as session:
        earned = await monthly_ranks(session, month, utcnow(), flows.koc)
        rows = await rank_rewards(session, month)
    return earned, [f"  reward {r.reward.id} {r.place}: {r.name} {r.reward.label} "
                    f"({r.reward.status})" for r in rows]


@koc.command("settle")
def settle(env_file: EnvFile = None) -> None:
    """Decide the pending referrals whose outcome is clear, now; print what became of them."""
    flows = _flows(env_file)
    counts = run_on_database(_on_database, env_file, _settle, flows)
    done = ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
    typer.echo(f"referrals settled: {done or 'none decided'}")


async def _settle(db: Database, flows: Flows) -> dict[str, int]:
    from app.engine.db import utcnow
    from app.koc.referrals import settle as settle_referrals

    assert flows.koc is not None
    async with db.unit_of_work() as session:
        return await settle_referrals(session, utcnow(), flows.koc)
