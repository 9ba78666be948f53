"""The calendar: what is posted where on a day, the one-a-day rule's policies, the content
queue (API and slots taking items once), the preview, and bad declarations."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.calendar import content
from app.calendar.flows import CalendarFlows
from app.calendar.planner import (
    MASS_TASK,
    OWNER_REMINDER,
    ROBOT,
    cap_report,
    day_posts,
    plan_day,
    posts_for,
)
from app.calendar.preview import preview
from app.engine.config import SHANGHAI
from app.engine.db import Database, utcnow
from app.faces.cli.main import cli
from app.flows import load_flows
from app.groups.models import CustomerGroup
from tests.conftest import API_KEY, REPO, make_settings, serve_app
from tests.funnel.test_codes import env_file

CALENDAR, TALKS = load_flows(REPO / "sop_flows").calendar, load_flows(REPO / "sop_flows").talks
MONDAY, TUESDAY = date(2026, 11, 30), date(2026, 12, 1)
OWNERS = {"zhangsan": ["wr1", "wr2"], "lisi": ["wr3"]}


def with_policy(policy: str) -> CalendarFlows:
    return CALENDAR.model_copy(update={"daily_cap_policy": policy})


def test_a_day_of_posts_in_time_order_with_the_weekly_calendar_on_monday() -> None:
    posts = posts_for(CALENDAR.segments["shop_north"], MONDAY)
    assert [(p.at.strftime("%H:%M"), p.name) for p in posts] == [
        ("08:00", "morning"), ("10:30", "slot0"), ("15:00", "slot1"), ("21:00", "evening")]
    assert "本周活动" in (posts[0].extra or "")
    assert posts_for(CALENDAR.segments["shop_north"], TUESDAY)[0].extra is None
    assert posts[0].at.tzinfo == SHANGHAI
    assert posts[1].key("shop_north") == "shop_north:20261130:slot0"


@pytest.mark.parametrize(("policy", "expected"), [
    ("merge", [("08:00", MASS_TASK, "lisi", 4), ("08:00", MASS_TASK, "zhangsan", 4)]),
    ("highest_priority", [("10:30", MASS_TASK, "lisi", 1), ("10:30", MASS_TASK, "zhangsan", 1)]),
    ("remind_owner", [("08:00", OWNER_REMINDER, "lisi", 1),
                      ("08:00", OWNER_REMINDER, "zhangsan", 1),
                      ("10:30", MASS_TASK, "lisi", 1), ("10:30", MASS_TASK, "zhangsan", 1),
                      ("15:00", OWNER_REMINDER, "lisi", 1),
                      ("15:00", OWNER_REMINDER, "zhangsan", 1),
                      ("21:00", OWNER_REMINDER, "lisi", 1),
                      ("21:00", OWNER_REMINDER, "zhangsan", 1)]),
])
def test_one_mass_message_per_group_a_day_whatever_the_policy(
        policy: str, expected: list[tuple[str, str, str, int]]) -> None:
    deliveries = [d for d in plan_day(with_policy(policy), "shop_north", TUESDAY, OWNERS)
                  if d.transport != ROBOT]
    assert [(d.at.strftime("%H:%M"), d.transport, d.target, len(d.posts))
            for d in deliveries] == expected
    tasks = [d for d in deliveries if d.transport == MASS_TASK]
    assert {d.target: d.chat_ids for d in tasks} == {"zhangsan": ("wr1", "wr2"),
                                                     "lisi": ("wr3",)}


def test_internal_groups_get_every_post_and_the_cap_is_reported() -> None:
    robot = [d for d in plan_day(CALENDAR, "shop_north", TUESDAY, OWNERS) if d.transport == ROBOT]
    assert [(d.at.strftime("%H:%M"), d.target) for d in robot] == [
        ("08:00", "ops"), ("10:30", "ops"), ("15:00", "ops"), ("21:00", "ops")]
    assert plan_day(CALENDAR, "reseller", TUESDAY, {}) == []  # no groups, no internal target
    assert cap_report(CALENDAR)[0].startswith(
        "shop_north: up to 5 posts a day (e.g. Thursday), WeCom allows one mass message per "
        "customer group; policy")


def test_the_default_policy_keeps_every_post_at_its_own_time() -> None:
    """The sample and the schema default: the evening greeting never goes out at 08:00."""
    assert CALENDAR.daily_cap_policy == "remind_owner"
    assert CalendarFlows.model_fields["daily_cap_policy"].default == "remind_owner"
    deliveries = [d for d in plan_day(CALENDAR, "shop_north", TUESDAY, {"lisi": ["wr3"]})
                  if d.transport != ROBOT]
    assert [(d.at.strftime("%H:%M"), d.transport, [p.name for p in d.posts])
            for d in deliveries] == [("08:00", OWNER_REMINDER, ["morning"]),
                                     ("10:30", MASS_TASK, ["slot0"]),
                                     ("15:00", OWNER_REMINDER, ["slot1"]),
                                     ("21:00", OWNER_REMINDER, ["evening"])]


def test_check_says_what_each_policy_does_with_each_post_per_segment() -> None:
    south = next(line for line in cap_report(CALENDAR) if line.startswith("shop_south"))
    assert south == (
        "shop_south: up to 4 posts a day (e.g. Wednesday), WeCom allows one mass message per "
        "customer group; policy remind_owner: 10:30 今日上新 as the mass task (with Monday's "
        "weekly calendar), 08:00 早安, 15:00 星品推荐 and 16:00 档口评测 as owner reminders at "
        "their times (other policies: merge: 08:00 早安, 10:30 今日上新, 15:00 星品推荐 and 16:00 "
        "档口评测 together in one task at 08:00; highest_priority: only 10:30 今日上新 as the "
        "mass task, 08:00 早安, 15:00 星品推荐 and 16:00 档口评测 not sent)")
    # With the talks (sop_flows/talks.yaml), Tuesday is the busiest: the 嘉宾分享会's
    # announcement and the 新人答疑会 itself are planned with the calendar's posts.
    merged = cap_report(with_policy("merge"), TALKS)
    tuesday = ("policy merge: 08:00 早安, 10:30 今日上新, 12:00 嘉宾分享会 announce, "
               "15:00 星品推荐, 19:00 新人答疑会 reminder, 20:00 新人答疑会 opening and 21:00 晚安 "
               "together in one task at 08:00")
    assert any(line.startswith("shop_north: up to 7 posts a day (e.g. Tuesday)")
               and tuesday in line for line in merged), merged
    calendar_only = cap_report(with_policy("merge"))
    reseller = next(line for line in calendar_only if line.startswith("reseller"))
    assert "remind_owner: 11:00 星品推荐 as the mass task, 09:00 早安 as owner reminder at its " \
        "time" in reseller
    assert not any(line.startswith("online") for line in calendar_only)  # one post a day


@pytest.mark.parametrize(("change", "message"), [
    (('{time: "10:30", column: new_arrivals, priority: 5}\n      - {time: "15:00"',
      '{time: "25:00", column: new_arrivals, priority: 5}\n      - {time: "15:00"'),
     "time '25:00': HH:MM from 00:00 to 23:59"),
    (("column: star_picks, priority: 3", "column: gossip, priority: 3"),
     "segments.shop_north.slots.1: unknown column 'gossip'"),
    (("  online_douyin:\n", "  online_tiktok:\n"), "segments.online_tiktok: unknown segment"),
    (('template: "【{column}】{title}\\n{body}\\n素材：{link}"',
      'template: "【{column}】{title}\\n{price}"'), "unknown placeholder {price}"),
])
def test_bad_calendars_are_refused_with_file_and_line(tmp_path: Path, change: tuple[str, str],
                                                      message: str) -> None:
    import shutil

    from app.engine.yamlconf import ConfigFileError

    flows = tmp_path / "sop_flows"
    shutil.copytree(REPO / "sop_flows", flows)
    path = flows / "calendar.yaml"
    text = path.read_text(encoding="utf-8")
    assert change[0] in text
    path.write_text(text.replace(*change), encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_flows(flows)
    assert message in info.value.message
    assert info.value.path == path and info.value.line is not None


async def test_slots_take_the_next_item_once_and_an_empty_column_is_skipped(
        db_url: str) -> None:
    db = Database(db_url)
    now = utcnow()
    try:
        async with db.unit_of_work() as session:
            for n in (1, 2):
                await content.add(session, "new_arrivals", f"新品{n}", f"说明{n}", None, now)
            for chat_id, owner in (("wrA", "zhangsan"), ("wrB", "zhangsan")):
                session.add(CustomerGroup(chat_id=chat_id, owner=owner, segment="shop_south",
                                          name=chat_id, member_count=3, status="live",
                                          created_at=now, updated_at=now))
        async with db.unit_of_work() as session:
            first = await content.take(session, "new_arrivals", "shop_south:20261201:slot0", now)
            again = await content.take(session, "new_arrivals", "shop_south:20261201:slot0", now)
            assert first is not None and again is not None and first.id == again.id
        async with db.reader() as session:
            lines = await preview(session, with_policy("merge"), TUESDAY, 2, "shop_south")
        greeting = "早上好！今天也是进货的好日子，有问题随时在群里…"
        tasks = [line for line in lines if "mass task" in line]
        # Tuesday's slot took 新品1 already: it shows it again, and Wednesday's has 新品2.
        assert tasks == [
            f"    08:00 mass task → zhangsan (2 group(s)): {greeting} | 【今日上新】新品1 | "
            "(档口评测: queue empty, skipped)",
            f"    08:00 mass task → zhangsan (2 group(s)): {greeting} | "  # Wednesday
            "【今日上新】新品2 | (星品推荐: queue empty, skipped) | "
            "(档口评测: queue empty, skipped)"]
        assert lines[1:3] == ["2026-12-01 周二", "  shop_south: 2 customer group(s), 1 owner(s)"]
        robot = [line.split(":", 2)[2] for line in lines if " robot ops:" in line]
        assert robot[:3] == [f" {greeting}", " 【今日上新】新品1",
                             " (档口评测: queue empty, skipped)"]
    finally:
        await db.dispose()


async def test_content_is_queued_through_the_api(db_url: str) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with serve_app(make_settings(db_url)) as app:
        added = await app.client.post("/api/content", headers=headers, json={
            "column": "star_picks", "title": "爆款保温杯", "body": "进货价 12 元",
            "link": "https://example.com/cup"})
        assert added.status_code == 201, added.text
        bad = await app.client.post("/api/content", headers=headers,
                                    json={"column": "gossip", "title": "x"})
        assert bad.status_code == 422 and "unknown column 'gossip'" in bad.text
        assert (await app.client.post("/api/content", json={"column": "star_picks",
                                                            "title": "x"})).status_code == 401
        listed = await app.client.get("/api/content", headers=headers,
                                      params={"column": "star_picks"})
        assert [i["title"] for i in listed.json()] == ["爆款保温杯"]


def test_the_preview_command(db_url: str, tmp_path: Path) -> None:
    env = str(env_file(tmp_path, db_url))
    shown = CliRunner().invoke(cli, ["calendar", "preview", "--from", "2026-11-30", "--days", "1",
                                     "--segment", "online", "--env-file", env])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines() == [
        "calendar 2026-11-30 to 2026-11-30 (Asia/Shanghai), daily cap policy: remind_owner",
        "talk qa_online: 新人答疑会 every 周五 20:00, online, online_douyin, host 运营小林, topic "
        "'选品、上架素材、一件代发和直播备货'",
        "2026-11-30 周一", "  online: 0 customer group(s), 0 owner(s)", "    nothing to post"]
    bad = CliRunner().invoke(cli, ["calendar", "preview", "--segment", "nowhere",
                                   "--env-file", env])
    assert bad.exit_code == 2 and "not in sop_flows/calendar.yaml" in bad.output
    checked = CliRunner().invoke(cli, ["check", "--env-file", env])
    assert "note: calendar shop_north: up to 7 posts a day (e.g. Tuesday)" in checked.stdout


def test_the_six_columns_run_on_their_weekdays() -> None:
    assert set(CALENDAR.columns.values()) == {"档口评测", "今日上新", "星品推荐", "社群小店",
                                              "店主代言", "嘉宾分享会", "光荣榜", "话题讨论"}
    used = {slot.column for s in CALENDAR.segments.values() for slot in s.slots}
    # Every column has a slot somewhere; 《嘉宾分享会》 is the topic source of the talks; the
    # recommender programme's 光荣榜 and 话题讨论 have their slots commented in the sample.
    assert used == set(CALENDAR.columns) - {"guest_talk", "honor_roll", "topic"}
    week = [date(2026, 12, 2) + timedelta(days=n) for n in range(7)]  # Wednesday on
    talks = [(f"{d:%a}", p.at.strftime("%H:%M"), p.name) for d in week
             for p in day_posts(CALENDAR, "shop_north", d, TALKS) if p.column == "guest_talk"]
    assert talks == [("Wed", "19:00", "talk.guest_shops.reminder"),
                     ("Wed", "20:00", "talk.guest_shops.opening"),
                     ("Thu", "10:00", "talk.guest_shops.summary"),
                     ("Tue", "12:00", "talk.guest_shops.announce")]
    assert [p.name for p in posts_for(CALENDAR.segments["shop_north"], TUESDAY)] == [
        "morning", "slot0", "slot1", "evening"]


def test_the_weekly_calendar_goes_with_the_one_task_whatever_the_policy() -> None:
    for policy in ("merge", "highest_priority", "remind_owner"):
        tasks = [d for d in plan_day(with_policy(policy), "shop_north", MONDAY, OWNERS)
                 if d.transport == MASS_TASK]
        # One mass task per owner, each carrying the weekly post (an empty list would pass all()).
        assert sorted(d.target for d in tasks) == sorted(OWNERS), policy
        assert all(any(p.extra and "本周活动" in p.extra for p in d.posts) for d in tasks), policy
        # ... and each post goes to an owner once: the task's post is not reminded as well.
        sent = [(d.target, p.name) for d in plan_day(with_policy(policy), "shop_north", MONDAY,
                                                     OWNERS) if d.transport != ROBOT
                for p in d.posts]
        assert sorted(sent) == sorted({(o, n) for o in OWNERS for n in (
            "morning", "slot0", "slot1", "evening") if policy != "highest_priority"
            or n == "slot0"}), policy


def test_an_owner_gets_one_reminder_per_post_for_all_their_groups() -> None:
    """Groups with a task of their own (an onboarding action each) still share the owner's
    reminders: one 08:00 早上好 naming every group, not one per group; their tasks stay apart."""
    from app.calendar.posts import Post, at_time

    chats = ["wr1", "wr2", "wr3", "wr4", "wr5"]
    own = {c: Post(at_time(TUESDAY, "10:30"), f"sop.day{n}", 9, text=f"第{n}天")
           for n, c in enumerate(chats[:4])}
    planned = [d for d in plan_day(CALENDAR, "shop_north", TUESDAY, {"zhangsan": chats}, own)
               if d.transport != ROBOT]
    reminders = [(f"{d.at:%H:%M}", [p.name for p in d.posts], d.chat_ids) for d in planned
                 if d.transport == OWNER_REMINDER]
    every = ("wr5", "wr1", "wr2", "wr3", "wr4")  # the shared groups' reminder, the others added
    assert reminders == [("08:00", ["morning"], every), ("10:30", ["slot0"], tuple(chats[:4])),
                         ("15:00", ["slot1"], every), ("21:00", ["evening"], every)]
    tasks = [(d.chat_ids, d.label) for d in planned if d.transport == MASS_TASK]
    assert tasks == [(("wr5",), ""), *((((c,), c)) for c in chats[:4])]
