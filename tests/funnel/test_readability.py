"""The funnel read as operators read it: each step's rate within the channels that have the step
before it, the steps before routing shown as not segmented yet, funnel.yaml's labels in
`sopbot funnel`, and the daily counts by Asia/Shanghai day."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from app.engine.db import Database, utcnow
from app.engine.yamlconf import load_model
from app.faces.cli.main import cli
from app.faces.console.periods import SHANGHAI
from app.funnel import report, steps, trend
from app.funnel import service as funnel
from app.funnel.flows import FunnelFlows
from app.members.models import Member
from tests.conftest import REPO, config_error

DAY1 = (utcnow() - timedelta(days=2)).astimezone(SHANGHAI).replace(hour=10, minute=0)
DAY2 = DAY1 + timedelta(days=1)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    async with database.unit_of_work() as session:
        await seed(session)
    yield database
    await database.dispose()


async def seed(session: AsyncSession) -> None:
    """Ten app users reach the landing page and four of them add (slot home_popup); six people
    add from douyin, which has no landing page. Two app members are approved and routed."""
    for n in range(10):
        await funnel.record(session, steps.LANDING, f"landing:{n}", DAY1,
                            platform_user_id=f"u{n}", channel="app", slot="home_popup")
    people = [("app", "home_popup")] * 4 + [("douyin", None)] * 6
    for n, (channel, slot) in enumerate(people):
        member = Member(external_userid=f"wm{n}", staff_userid="zhangsan", channel=channel,
                        slot=slot, platform_user_id=f"u{n}" if slot else None)
        session.add(member)
        await session.flush()
        # Two adds on the first day, the rest on the second, for the daily counts.
        await funnel.record(session, steps.FRIEND_ADDED, f"added:{n}", DAY1 if n < 2 else DAY2,
                            member=member)
        if n < 2:
            await funnel.record(session, steps.APPROVED, f"approved:{n}", DAY2, member=member)
            member.segment = "shop_north"  # routing sets it after the approval is counted
            await funnel.record(session, steps.ROUTED, f"routed:{n}", DAY2, member=member)


async def groups(db: Database, by: str | None) -> dict[str, report.Group]:
    async with db.reader() as session:
        return {g.value: g for g in await report.gather(session, by, DAY1 - timedelta(days=1))}


async def test_the_add_friend_rate_is_counted_within_the_channels_with_a_landing_page(
        db: Database) -> None:
    whole = (await groups(db, None))["all"]
    assert (whole.counts[steps.LANDING], whole.counts[steps.FRIEND_ADDED]) == (10, 10)
    # Not 10/10 = 100 %: douyin's six adds had no landing page to convert from.
    assert report.conversion(whole, steps.FRIEND_ADDED) == report.Rate("40.0%", steps.LANDING,
                                                                       ("app",))
    by_channel = await groups(db, "channel")
    assert report.conversion(by_channel["app"], steps.FRIEND_ADDED, "channel") == report.Rate(
        "40.0%", steps.LANDING)
    assert report.conversion(by_channel["douyin"], steps.FRIEND_ADDED, "channel").text == "-"
    by_slot = await groups(db, "slot")
    assert report.conversion(by_slot["home_popup"], steps.FRIEND_ADDED, "slot").text == "40.0%"
    assert report.conversion(by_slot[report.NO_VALUE], steps.FRIEND_ADDED, "slot").text == "-"


async def test_steps_before_routing_are_not_segmented_yet(db: Database) -> None:
    by_segment = await groups(db, "segment")
    north, before = by_segment["shop_north"], by_segment[report.NO_VALUE]
    assert not report.known("segment", "shop_north", steps.FRIEND_ADDED)
    assert not report.known("segment", "shop_north", steps.APPROVED)
    assert report.known("segment", "shop_north", steps.ROUTED)
    assert report.known("segment", report.NO_VALUE, steps.FRIEND_ADDED)
    # From routing on everyone is in their own segment: the valueless group's 0 routed would
    # read as "0 % routed" (seen in the demo's console).
    assert not report.known("segment", report.NO_VALUE, steps.ROUTED)
    # By region the same from the submission on (the form asks for it).
    assert not report.known("region", "广东", steps.VERIFY_OPENED)
    assert report.known("region", "广东", steps.SUBMITTED)
    assert report.known("region", report.NO_VALUE, steps.VERIFY_OPENED)
    assert not report.known("region", report.NO_VALUE, steps.SUBMITTED)
    assert north.counts[steps.ROUTED] == 2
    # Its base (approved) was counted before the segment was known: no rate, not "0 %".
    assert report.conversion(north, steps.ROUTED, "segment").text == "-"
    assert (before.counts[steps.FRIEND_ADDED], before.counts[steps.APPROVED]) == (10, 2)
    text = report.format_report(list(by_segment.values()), "segment", "7d", DAY1,
                                {"shop_north": "实体店·北方群", report.NO_VALUE: "未分群"})
    assert "segment = shop_north (实体店·北方群)" in text
    assert "segment = (none) (未分群)" in text
    north_block = text.split("segment = shop_north")[1].split("\n\n")[0].splitlines()
    assert ["friend_added", "-", "(segment", "not", "known", "before", "routed)"] in [
        line.split() for line in north_block]
    assert ["routed", "2", "-", "approved"] in [line.split() for line in north_block]
    before_block = text.split("segment = (none)")[1].split("\n\n")[0].splitlines()
    assert ["routed", "-", "(counted", "in", "each", "segment", "from", "routed)"] in [
        line.split() for line in before_block]


def test_the_command_names_channels_and_slots_by_their_labels(
        db: Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOPBOT_DATABASE_URL", raising=False)
    env = tmp_path / "db.env"
    env.write_text(f"SOPBOT_DATABASE_URL={db_url}\nSOPBOT_FLOWS={REPO / 'sop_flows'}\n")
    by_channel = CliRunner().invoke(cli, ["funnel", "--by", "channel", "--env-file", str(env)])
    assert by_channel.exit_code == 0, by_channel.output
    assert "channel = app (App 内广告位)" in by_channel.stdout
    assert "channel = douyin (抖音)" in by_channel.stdout
    by_slot = CliRunner().invoke(cli, ["funnel", "--by", "slot", "--env-file", str(env)])
    assert "slot = home_popup (首页弹窗)" in by_slot.stdout
    assert "slot = (none) (无广告位)" in by_slot.stdout
    whole = CliRunner().invoke(cli, ["funnel", "--env-file", str(env)])
    assert ["friend_added", "10", "40.0%", "landing", "(within", "app)"] in [
        line.split() for line in whole.stdout.splitlines()]
    # All events together name no group: a broken flow file does not stop the report.
    env.write_text(f"SOPBOT_DATABASE_URL={db_url}\nSOPBOT_FLOWS={tmp_path / 'nowhere'}\n")
    whole = CliRunner().invoke(cli, ["funnel", "--env-file", str(env)])
    assert whole.exit_code == 0, whole.output


async def test_daily_counts_are_per_shanghai_day(db: Database) -> None:
    late = DAY1.replace(hour=23, minute=59)  # 15:59 UTC: still DAY1 in Shanghai
    async with db.unit_of_work() as session:
        await funnel.record(session, steps.TARGETED, "t:late", late, platform_user_id="x1")
        await funnel.record(session, steps.TARGETED, "t:next", late + timedelta(minutes=1),
                            platform_user_id="x2")
    async with db.reader() as session:
        found = await trend.daily(session, None, DAY1 - timedelta(days=1))
        by_channel = await trend.daily(session, "channel", DAY1 - timedelta(days=1))
    day1, day2 = DAY1.date(), DAY2.date()
    assert found["all"][steps.TARGETED] == {day1: 1, day2: 1}
    assert found["all"][steps.FRIEND_ADDED] == {day1: 2, day2: 8}
    assert by_channel["douyin"][steps.FRIEND_ADDED] == {day2: 6}
    assert by_channel["app"][steps.LANDING] == {day1: 10}
    assert all(isinstance(day, date) and not isinstance(day, datetime)
               for per_step in found.values() for days in per_step.values() for day in days)


def test_slots_are_declared_with_labels_or_as_a_plain_list(tmp_path: Path) -> None:
    declared = load_model(REPO / "sop_flows" / "funnel.yaml", FunnelFlows)
    assert declared.slot_labels()["home_popup"] == "首页弹窗"
    assert list(declared.channels["app"].slots)[0] == "home_banner"  # declaration order
    text = ("default_channel: app\nchannels:\n  app: {label: App, staff: [a], slots: SLOTS}\n"
            "welcome:\n  default: {text: 欢迎}\n")
    plain = tmp_path / "plain.yaml"
    plain.write_text(text.replace("SLOTS", "[banner]"), encoding="utf-8")
    assert load_model(plain, FunnelFlows).slot_labels() == {"banner": "banner"}
    error = config_error(tmp_path / "bad.yaml", text.replace("SLOTS", '{banner: " "}'),
                         FunnelFlows)
    assert "slot 'banner': its label is empty" in error.message
