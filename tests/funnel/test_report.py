"""`sopbot funnel`: distinct subjects per step, conversion, side counts and welcome latency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.engine.db import Database, utcnow
from app.faces.cli.main import cli
from app.funnel import report
from app.funnel import service as funnel
from app.members.models import Member

NOW = utcnow()
RECENT = NOW - timedelta(hours=2)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await seed(database)
    yield database
    await database.dispose()


async def seed(db: Database) -> None:
    """Four app users (two from an in-app slot, two from douyin), two of whom became members."""
    app_steps = [("targeted", "u1", "app"), ("targeted", "u2", "app"),
                 ("targeted", "u3", "douyin"), ("targeted", "u4", "douyin"),
                 ("impression", "u1", "app"), ("impression", "u1", "app"),  # seen twice
                 ("impression", "u2", "app"), ("impression", "u3", "douyin"),
                 ("click", "u1", "app"), ("click", "u3", "douyin"), ("landing", "u1", "app")]
    async with db.unit_of_work() as session:
        for n, (step, user, channel) in enumerate(app_steps):
            await funnel.record(session, step, f"app:{n}", RECENT, platform_user_id=user,
                                channel=channel, slot="home_banner" if channel == "app" else None)
        await funnel.record(session, "targeted", "app:old", NOW - timedelta(days=10),
                            platform_user_id="u9", channel="app")  # outside 7d
        m1 = await member(session, "wm1", "app", "home_banner", "u1")
        m2 = await member(session, "wm2", "douyin", None, "u3")
        for m, latency in ((m1, 120), (m2, 900)):
            await funnel.record(session, "friend_added", f"friend_added:{m.id}", RECENT, member=m)
            await funnel.record(session, "welcome_sent", f"welcome_sent:{m.id}", RECENT,
                                member=m, latency_ms=latency)
        await funnel.record(session, "submitted", f"submitted:{m1.id}", RECENT, member=m1)
        await funnel.record(session, "approved", f"approved:{m1.id}", RECENT, member=m1)
        await funnel.record(session, "routed", f"routed:{m1.id}", RECENT, member=m1)
        await funnel.record(session, "welcome_skipped", "welcome_skipped:x", RECENT,
                            channel="organic")
        await funnel.record(session, "default_channel", "default_channel:x", RECENT,
                            channel="organic")


async def member(session, euid: str, channel: str, slot: str | None,  # type: ignore[no-untyped-def]
                 user: str) -> Member:
    row = Member(external_userid=euid, staff_userid="zhangsan", channel=channel, slot=slot,
                 platform_user_id=user)
    session.add(row)
    await session.flush()
    return row


async def groups(db: Database, by: str | None, since: datetime) -> dict[str, report.Group]:
    async with db.reader() as session:
        return {g.value: g for g in await report.gather(session, by, since)}


async def test_counts_distinct_subjects_per_step_within_the_period(db: Database) -> None:
    (whole,) = (await groups(db, None, NOW - timedelta(days=7))).values()
    assert whole.value == "all"
    assert whole.counts == {"targeted": 4, "impression": 3, "click": 2, "landing": 1,
                            "friend_added": 2, "welcome_sent": 2, "submitted": 1,
                            "approved": 1, "routed": 1, "welcome_skipped": 1,
                            "default_channel": 1}
    assert sorted(whole.latencies) == [120, 900]
    assert report.conversion(whole, "impression") == report.Rate("75.0%", "targeted")
    assert report.conversion(whole, "landing") == report.Rate("50.0%", "click")
    assert report.conversion(whole, "verify_opened") == report.Rate("0.0%", "welcome_sent")
    assert report.conversion(whole, "submitted") == report.Rate("-", "verify_opened")
    assert report.conversion(whole, "routed") == report.Rate("100.0%", "approved")
    assert report.conversion(whole, "targeted") == report.Rate("-", "")
    with_old = (await groups(db, None, NOW - timedelta(days=30)))["all"]
    assert with_old.counts["targeted"] == 5


async def test_report_text_shows_conversion_side_counts_and_latency(db: Database) -> None:
    since_at = NOW - timedelta(days=7)
    text = report.format_report(list((await groups(db, None, since_at)).values()), None, "7d",
                                since_at)
    lines = [line.split() for line in text.splitlines()]
    assert ["impression", "3", "75.0%", "targeted"] in lines
    # douyin's friend add has no landing page before it: the rate is the app channel's alone.
    assert ["friend_added", "2", "100.0%", "landing", "(within", "app)"] in lines
    assert ["rejected", "0", "0.0%", "submitted"] in lines
    assert ("  welcome_skipped 1, welcome_missed 0, default_channel 1, left_group 0, "
            "deleted_staff 0") in text.splitlines()
    assert "  welcome latency p50 120 ms, p99 900 ms (n=2)" in text.splitlines()


async def test_grouped_by_channel(db: Database) -> None:
    by_channel = await groups(db, "channel", NOW - timedelta(days=7))
    assert list(by_channel) == ["app", "douyin", "organic"]
    app, douyin = by_channel["app"].counts, by_channel["douyin"].counts
    assert (app["targeted"], app["impression"], app["click"], app["landing"]) == (2, 2, 1, 1)
    assert (douyin["targeted"], douyin["impression"], douyin["click"]) == (2, 1, 1)
    assert "landing" not in douyin
    assert by_channel["douyin"].latencies == [900]
    assert by_channel["organic"].counts == {"welcome_skipped": 1, "default_channel": 1}
    by_slot = await groups(db, "slot", NOW - timedelta(days=7))
    assert list(by_slot) == ["home_banner", "(none)"]


def test_parse_since_and_by() -> None:
    assert report.parse_since("24h") == timedelta(hours=24)
    assert report.parse_since("30d") == timedelta(days=30)
    for bad in ("7", "0d", "7w", "-1d", ""):
        with pytest.raises(report.ReportError, match="--since"):
            report.parse_since(bad)
    assert report.parse_by("region") == "region"
    with pytest.raises(report.ReportError, match="use one of channel, slot, segment, region"):
        report.parse_by("city")


def test_percentile_is_nearest_rank() -> None:
    assert report.percentile([], 50) is None
    assert report.percentile([5], 99) == 5
    values = list(range(1, 101))
    assert (report.percentile(values, 50), report.percentile(values, 99)) == (50, 99)


def test_command_groups_and_rejects_a_bad_by(db: Database, db_url: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOPBOT_DATABASE_URL", raising=False)
    env = tmp_path / "db.env"
    env.write_text(f"SOPBOT_DATABASE_URL={db_url}\n")
    result = CliRunner().invoke(cli, ["funnel", "--by", "channel", "--since", "7d",
                                      "--env-file", str(env)])
    assert result.exit_code == 0, result.output
    assert "channel = app" in result.stdout and "channel = douyin" in result.stdout
    bad = CliRunner().invoke(cli, ["funnel", "--by", "city", "--env-file", str(env)])
    assert bad.exit_code == 2
    assert bad.stderr == ("sopbot: --by 'city': use one of channel, slot, segment, region\n")
    bad_since = CliRunner().invoke(cli, ["funnel", "--since", "week", "--env-file", str(env)])
    assert bad_since.exit_code == 2 and bad_since.stderr.startswith("sopbot: --since 'week'")
