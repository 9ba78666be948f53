"""Onboarding: a group that fills starts its campaign, gets one action a day inside its own
task of the day (still one mass message), can be paused, and finishes after its last day."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.calendar.models import SopRun
from app.calendar.posting import post_due
from app.engine.config import SHANGHAI
from app.engine.db import Database
from app.engine.outbox.models import OutboxMessage
from app.faces.cli.main import cli
from app.flows import load_flows
from app.groups.models import CustomerGroup
from tests.conftest import REPO
from tests.funnel.test_codes import env_file

FLOWS = load_flows(REPO / "sop_flows")
# shop_north's calendar without its robot, merged (one task a day), and the 7-day campaign.
CALENDAR = FLOWS.calendar.model_copy(update={
    "daily_cap_policy": "merge", "internal": {},
    "segments": {"shop_north": FLOWS.calendar.segments["shop_north"]}})
CAMPAIGNS = FLOWS.onboarding
DAY1 = datetime(2026, 12, 1, tzinfo=SHANGHAI)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    async with database.unit_of_work() as session:
        for chat_id, filled in (("wrFull", DAY1 + timedelta(hours=9)), ("wrOpen", None)):
            session.add(CustomerGroup(chat_id=chat_id, owner="zhangsan", segment="shop_north",
                                      name=f"实体店北方交流群{chat_id}", member_count=3,
                                      status="live", created_at=DAY1 - timedelta(days=3),
                                      updated_at=DAY1, filled_at=filled))
    yield database
    await database.dispose()


async def tasks(db: Database) -> list[dict]:  # type: ignore[type-arg]
    async with db.reader() as session:
        rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [json.loads(r.request) | {"key": r.idempotency_key} for r in rows]


async def runs(db: Database) -> list[SopRun]:
    async with db.reader() as session:
        return list(await session.scalars(select(SopRun)))


async def test_a_filled_group_runs_its_campaign_inside_its_own_daily_task(db: Database) -> None:
    def morning(day: int) -> datetime:  # within the grace of the day's merged task (08:00)
        return DAY1 + timedelta(days=day, hours=8, minutes=5)

    # Day 0 (the group fills at 09:00): its owner's task covers both groups, as usual.
    await post_due(db, CALENDAR, morning(0), 1, CAMPAIGNS)
    assert [t["chat_id_list"] for t in await tasks(db)] == [["wrFull", "wrOpen"]]
    await post_due(db, CALENDAR, DAY1 + timedelta(hours=10), 1, CAMPAIGNS)
    [run] = await runs(db)
    assert (run.chat_id, run.campaign, run.started_on, run.status) == (
        "wrFull", "7d", "2026-12-02", "active")
    assert len(await tasks(db)) == 1  # nothing more today: it had its mass message
    # Day 1: the filled group has a task of its own, with the campaign's action in it.
    await post_due(db, CALENDAR, morning(1), 1, CAMPAIGNS)
    by_chats = {tuple(t["chat_id_list"]): t for t in (await tasks(db))[1:]}
    assert set(by_chats) == {("wrOpen",), ("wrFull",)}
    alone = by_chats[("wrFull",)]["text"]["content"]
    assert "欢迎大家加入「实体店北方交流群wrFull」" in alone and alone.startswith("早上好")
    assert "欢迎大家加入" not in by_chats[("wrOpen",)]["text"]["content"]
    # Days 2, 3 and 4 bring their actions: one every day.
    texts = []
    for day in (2, 3, 4):
        before = len(await tasks(db))
        await post_due(db, CALENDAR, morning(day), 1, CAMPAIGNS)
        new = [t for t in (await tasks(db))[before:] if t["chat_id_list"] == ["wrFull"]]
        texts.append(new[0]["text"]["content"] if new else "")
    assert "新人答疑" in texts[0] and "群规提醒" in texts[1] and "自我介绍接龙" in texts[2]
    # Paused, a day's action waits; resumed, it goes on; after day 7 the run is done.
    async with db.unit_of_work() as session:
        (await session.scalar(select(SopRun))).status = "paused"  # type: ignore[union-attr]
    await post_due(db, CALENDAR, morning(5), 1, CAMPAIGNS)
    assert "本周之星" not in json.dumps(await tasks(db), ensure_ascii=False)
    async with db.unit_of_work() as session:
        (await session.scalar(select(SopRun))).status = "active"  # type: ignore[union-attr]
    for day in (6, 7, 8):
        await post_due(db, CALENDAR, morning(day), 1, CAMPAIGNS)
    assert "入群一周啦" in json.dumps(await tasks(db), ensure_ascii=False)
    [run] = await runs(db)
    assert (run.status, run.last_day) == ("done", 7)
    # One mass message per group a day, all week long.
    per_group_day = [(chat, t["key"].split(":")[2]) for t in await tasks(db)
                     for chat in t["chat_id_list"]]
    assert len(per_group_day) == len(set(per_group_day))


def test_the_sop_commands(db_url: str, tmp_path: Path) -> None:
    import asyncio

    env = str(env_file(tmp_path, db_url))
    assert CliRunner().invoke(cli, ["sop", "list", "--env-file", env]).stdout.strip() == \
        "no onboarding runs yet"

    async def seed() -> None:
        database = Database(db_url)
        async with database.unit_of_work() as session:
            session.add(SopRun(chat_id="wrX", campaign="7d", started_on="2026-12-01",
                               status="active", last_day=2, created_at=DAY1))
            session.add(SopRun(chat_id="wrGone", campaign="7d", started_on="2026-12-01",
                               status="done", last_day=7, created_at=DAY1))
            session.add(CustomerGroup(chat_id="wrX", owner="zhangsan", segment="shop_north",
                                      name="郑州实体店交流群", member_count=200, status="live",
                                      created_at=DAY1, updated_at=DAY1))
        await database.dispose()
    asyncio.run(seed())
    paused = CliRunner().invoke(cli, ["sop", "pause", "wrX", "--env-file", env])
    assert paused.exit_code == 0 and paused.stdout.strip() == "1 run(s) paused"
    listed = CliRunner().invoke(cli, ["sop", "list", "--env-file", env]).stdout
    assert "wrX" in listed and "day  2 paused" in listed
    assert "郑州实体店交流群" in listed.splitlines()[0]  # the group's name beside its id
    assert listed.splitlines()[1].endswith("day  7 done   (group not synced)")
    again = CliRunner().invoke(cli, ["sop", "pause", "wrX", "--env-file", env])
    assert again.exit_code == 2 and "no active run for group wrX" in again.output
    assert CliRunner().invoke(cli, ["sop", "resume", "wrX", "--env-file", env]).exit_code == 0


def test_the_sample_campaigns_plan_an_action_every_day_and_one_campaign_per_segment() -> None:
    assert {name: c.length for name, c in CAMPAIGNS.items()} == {"7d": 7, "21d": 21, "30d": 30}
    assert {name: c.days_without_action for name, c in CAMPAIGNS.items()} == {
        "7d": [], "21d": [], "30d": []}
    segments = [s for c in CAMPAIGNS.values() for s in c.segments]
    assert sorted(segments) == sorted(FLOWS.routing.segments)  # each exactly once
    month = CAMPAIGNS["30d"].days
    kinds = {action.action for action in month.values()}
    assert {"nickname", "self_intro", "rules_reminder", "welfare", "qa_notice", "column",
            "koc_invite", "koc_spotlight"} <= kinds
    columns = "".join(a.text for a in month.values() if a.action == "column")
    assert all(f"《{name}》" in columns for name in (
        "档口评测", "今日上新", "星品推荐", "社群小店", "店主代言", "嘉宾分享会"))


def test_the_samples_q_and_a_notices_name_no_time_of_their_own() -> None:
    """The newcomers' Q&A happens when talks.yaml says (e.g. Tuesday 20:30 for shop_south); a
    campaign day saying 「今晚 20:00」 told groups of a talk that was not happening."""
    import re
    notices = [a.text for c in CAMPAIGNS.values() for a in c.days.values()
               if a.action == "qa_notice"]
    assert notices and not [text for text in notices if re.search(r"\d{1,2}[:：]\d{2}|今晚", text)]


def test_check_warns_about_a_campaign_that_skips_days(db_url: str, tmp_path: Path) -> None:
    import shutil

    from app.calendar.onboarding import campaign_notes

    flows = tmp_path / "sop_flows"
    shutil.copytree(REPO / "sop_flows", flows)
    (flows / "onboarding_21d.yaml").write_text(
        "segments: [reseller]\ndays:\n  1: {action: post, text: 你好}\n"
        "  4: {action: topic, text: 今日话题}\n", encoding="utf-8")
    env = env_file(tmp_path, db_url)
    env.write_text(env.read_text().replace(f"SOPBOT_FLOWS={REPO / 'sop_flows'}",
                                           f"SOPBOT_FLOWS={flows}"))
    checked = CliRunner().invoke(cli, ["check", "--env-file", str(env)])
    assert checked.exit_code == 0, checked.output
    assert "warning: onboarding_21d.yaml: no action on day 2, 3 of 4 (the playbook plans one " \
        "action every day)" in checked.stdout.splitlines()
    assert campaign_notes(CAMPAIGNS) == []  # the samples: no warning


def test_a_campaign_for_an_unknown_segment_is_refused(tmp_path: Path) -> None:
    import shutil

    from app.engine.yamlconf import ConfigFileError

    flows = tmp_path / "sop_flows"
    shutil.copytree(REPO / "sop_flows", flows)
    (flows / "onboarding_21d.yaml").write_text(
        "segments: [nowhere]\ndays:\n  1: {action: post, text: 你好}\n", encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_flows(flows)
    assert "unknown segment 'nowhere'" in info.value.message and info.value.line == 1


async def test_no_group_gets_a_second_mass_message_whatever_changes_during_the_day(
        db: Database) -> None:
    from app.calendar import content

    async with db.unit_of_work() as session:
        for n in range(3):
            await content.add(session, "new_arrivals", f"新品{n}", "", None, DAY1)
    calendar = CALENDAR.model_copy(update={"daily_cap_policy": "highest_priority"})
    day1 = DAY1 + timedelta(days=1)
    await post_due(db, calendar, DAY1 + timedelta(hours=10), 1, CAMPAIGNS)  # the run starts
    await post_due(db, calendar, day1 + timedelta(hours=10, minutes=5), 1, CAMPAIGNS)
    assert [t["chat_id_list"] for t in await tasks(db)] == [["wrFull"]]  # its own, at 10:00
    # The run is paused before the shared 10:30 task, and wrOpen changes owner: wrFull is not
    # in the shared task, and wrOpen gets its task once.
    async with db.unit_of_work() as session:
        (await session.scalar(select(SopRun))).status = "paused"  # type: ignore[union-attr]
    await post_due(db, calendar, day1 + timedelta(hours=10, minutes=35), 1, CAMPAIGNS)
    async with db.unit_of_work() as session:
        group = await session.scalar(select(CustomerGroup).where(
            CustomerGroup.chat_id == "wrOpen"))
        assert group is not None
        group.owner = "lisi"
    report = await post_due(db, calendar, day1 + timedelta(hours=10, minutes=40), 1, CAMPAIGNS)
    assert [(t["sender"], t["chat_id_list"]) for t in await tasks(db)] == [
        ("zhangsan", ["wrFull"]), ("zhangsan", ["wrOpen"])]
    assert any("had today's mass message" in line for line in report.skipped)


async def test_a_post_too_long_to_send_gives_its_content_back(db: Database) -> None:
    from app.calendar import content
    from app.calendar.models import ContentItem

    now = DAY1 + timedelta(hours=10, minutes=31)
    async with db.unit_of_work() as session:
        await content.add(session, "new_arrivals", "超长新品", "长" * 1400, None, now)
    calendar = CALENDAR.model_copy(update={"daily_cap_policy": "highest_priority"})
    report = await post_due(db, calendar, now, 1, {})
    assert any("cannot be sent" in line for line in report.skipped)
    async with db.reader() as session:
        [item] = list(await session.scalars(select(ContentItem)))
    assert (item.used_at, item.used_for) == (None, None)  # the next slot may take it


async def test_the_preview_shows_a_group_in_onboarding_on_its_own(db: Database) -> None:
    from app.calendar.preview import preview

    await post_due(db, CALENDAR, DAY1 + timedelta(hours=10), 1, CAMPAIGNS)  # the run starts
    async with db.reader() as session:
        lines = await preview(session, CALENDAR, (DAY1 + timedelta(days=1)).date(), 1,
                              "shop_north", CAMPAIGNS)
    tasks_ = [line for line in lines if "mass task" in line]
    assert len(tasks_) == 2
    assert any("(wrFull, onboarding)" in line and "欢迎大家加入" in line for line in tasks_)
    assert any("(1 group(s))" in line and "欢迎大家加入" not in line for line in tasks_)
