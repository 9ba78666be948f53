"""`sopbot koc list|nominate|ranks|settle` and `sopbot funnel --by referrer` on a real database:
what each prints, its exit status, and one line on stderr when the programme is absent."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.engine.db import Database, utcnow
from app.faces.cli.main import cli
from app.koc.models import RANK, Recommender, Reward
from app.koc.stats import month_of
from app.members.models import Member
from tests.conftest import REPO, rows_of
from tests.koc.people import db, member, recommender
from tests.koc.referred import nickname, referred, settle

__all__ = ["db"]


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SOPBOT_DATABASE_URL", raising=False)
    monkeypatch.delenv("SOPBOT_FLOWS", raising=False)
    path = tmp_path / "db.env"
    path.write_text(f"SOPBOT_DATABASE_URL={db_url}\nSOPBOT_FLOWS={REPO / 'sop_flows'}\n")
    return path


def sopbot(env: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [*args, "--env-file", str(env)])
    return result.exit_code, result.stdout, result.stderr


def without_koc(env: Path, tmp_path: Path) -> Path:
    """The same settings, with sop_flows/ lacking koc.yaml."""
    flows = tmp_path / "flows"
    shutil.copytree(REPO / "sop_flows", flows)
    (flows / "koc.yaml").unlink()
    path = tmp_path / "nokoc.env"
    path.write_text(env.read_text().replace(str(REPO / "sop_flows"), str(flows)))
    return path


@pytest.fixture
async def programme(db: Database) -> tuple[Recommender, Recommender]:
    """Two recommenders: the first with two credited referrals (this week) and a group
    nickname, the second with one pending."""
    star, quiet = await recommender(db), await recommender(db)
    async with db.reader() as session:
        owner = await session.get(Member, star.member_id)
    assert owner is not None
    await nickname(db, owner, "小王")
    now = utcnow()
    for n in range(2):
        await referred(db, star, now - timedelta(hours=n + 1), phone=f"13{n}12345678")
    await referred(db, quiet, now - timedelta(hours=3), status="routed")
    return star, quiet


def test_list_and_settle(programme: tuple[Recommender, Recommender], env: Path) -> None:
    star, quiet = programme
    code, out, _ = sopbot(env, "koc", "settle")
    assert (code, out) == (0, "referrals settled: credited 2\n")
    assert sopbot(env, "koc", "settle")[1] == "referrals settled: none decided\n"
    code, out, _ = sopbot(env, "koc", "list")
    assert code == 0
    assert out.splitlines() == [
        f"#{star.member_id} 小王: recommender {star.id}, source test, code ready, "
        "referrals 2, credited 2, rewards 0",
        f"#{quiet.member_id}: recommender {quiet.id}, source test, code ready, "
        "referrals 1, credited 0, rewards 0"]


def test_funnel_by_referrer(programme: tuple[Recommender, Recommender], env: Path,
                            tmp_path: Path) -> None:
    star, quiet = programme
    code, out, err = sopbot(env, "funnel", "--by", "referrer", "--since", "7d")
    assert code == 0, err
    assert out.splitlines() == [
        "referral steps by referrer, last 7d (by friend add)",
        f"  #{star.member_id} 小王: referred 2, verified 2, joined 2, credited 0, flagged 0, "
        "pending 2, rejected 0",
        f"  #{quiet.member_id}: referred 1, verified 1, joined 0, credited 0, flagged 0, "
        "pending 1, rejected 0"]
    assert sopbot(env, "funnel", "--by", "referrer", "--since", "1h")[1].endswith(
        "  no referrals in the period\n")
    bad = sopbot(env, "funnel", "--by", "referrer", "--since", "week")
    assert bad[0] == 2 and bad[2].startswith("sopbot: --since 'week'")
    absent = sopbot(without_koc(env, tmp_path), "funnel", "--by", "referrer")
    assert absent == (2, "", "sopbot: --by referrer: no referral programme "
                             "(sop_flows/koc.yaml is absent)\n")


def test_nominate_says_what_became_of_the_member(db: Database, env: Path) -> None:
    shop = asyncio.run(_member(db))
    consumer = asyncio.run(_member(db, identity="consumer"))
    code, out, _ = sopbot(env, "koc", "nominate", str(shop))
    assert code == 0
    assert out.startswith(f"member #{shop} (recommender 1, ") and out.endswith(
        "is a recommender; their code is requested (the running service makes it and "
        "sends it on)\n")
    [rec] = asyncio.run(rows_of(db, Recommender))
    assert (rec.member_id, rec.source, rec.code) == (shop, "nominated:cli", "requested")
    code, _, err = sopbot(env, "koc", "nominate", str(consumer))
    assert code == 1 and err == (f"sopbot: member #{consumer} cannot be a recommender: only "
                                 "a verified business (linked, approved) can\n")
    assert sopbot(env, "koc", "nominate", "999")[1:] == ("", "sopbot: no member #999\n")


def test_ranks_earn_a_finished_month_once(db: Database, env: Path) -> None:
    month_ago = utcnow() - timedelta(days=40)
    month = month_of(month_ago)
    star = asyncio.run(_credited(db, month_ago))
    code, out, err = sopbot(env, "koc", "ranks", "--month", month)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{month}: 1 rank reward(s) earned now"
    assert lines[1].startswith("  reward 1 shop_north:1: #") and lines[1].endswith(
        "月度推荐之星一等奖（500 元进货券） (earned)")
    assert sopbot(env, "koc", "ranks", "--month", month)[1].startswith(
        f"{month}: 0 rank reward(s) earned now\n  reward 1 ")
    [reward] = asyncio.run(rows_of(db, Reward))
    assert (reward.kind, reward.recommender_id, reward.period) == (RANK, star, month)
    now_month = month_of(utcnow())
    assert sopbot(env, "koc", "ranks", "--month", now_month)[2] == (
        f"sopbot: --month {now_month}: the month is not over yet (Asia/Shanghai)\n")
    assert sopbot(env, "koc", "ranks", "--month", "2026-13")[0] == 2


def test_without_koc_yaml_every_command_says_so(env: Path, tmp_path: Path) -> None:
    absent = without_koc(env, tmp_path)
    for args in (["list"], ["nominate", "1"], ["ranks"], ["settle"]):
        assert sopbot(absent, "koc", *args) == (
            2, "", "sopbot: no referral programme: sop_flows/koc.yaml is absent "
                   "(docs/koc.md)\n"), args


async def _member(db: Database, identity: str = "physical_shop") -> int:
    return (await member(db, status="routed", identity=identity)).id


async def _credited(db: Database, at: datetime) -> int:
    rec = await recommender(db)
    await referred(db, rec, at)
    assert await settle(db, at + timedelta(hours=1)) == {"credited": 1}
    return rec.id
