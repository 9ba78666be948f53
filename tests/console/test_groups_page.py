"""/console/groups: every group with its segment, size against ideal, stage (filling before
it reaches its ideal size), health, last 7 days of activity with their source (the chat archive,
or none: joins, quits and posts, with the owners' WeCom figures beside), onboarding day, pool
and migration plan, from rows written by the real services; the filters and pages; the banner
every page shows while a segment's pool has no group with room."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from app.archive.models import OwnerGroupStat
from app.calendar import onboarding
from app.engine.db import Database, utcnow
from app.faces.console.pages.groups_view import PAGE_SIZE
from app.groups.migration import plan_migrations
from app.groups.models import CustomerGroup, GroupMember, GroupPool
from app.kf.models import KfConversation
from app.members import service as members
from tests.archive.test_reports import Talk, feed
from tests.conftest import OPERATOR, serve_app
from tests.console.conftest import PASSWORD, Console, console_settings, give_password, logged_in
from tests.console.tables import marked, table_rows

# chat_id → (segment, members, filled days ago or None, status)
GROUPS = {
    "wrZombie": ("online", 40, 60, "live"),
    "wrYoung": ("online", 180, 3, "live"),
    "wrLive": ("online", 25, None, "live"),
    "wrNorth": ("shop_north", 150, 50, "live"),
    "wrDaily": ("reseller", 170, 35, "live"),
    "wrGone": ("online", 3, None, "dismissed"),
    "wrStray": (None, 12, None, "live"),
}


async def seed(console: Console) -> None:
    runtime = console.app.runtime
    now = utcnow()
    old = now - timedelta(days=90)
    async with runtime.db.unit_of_work() as session:
        for chat_id, (segment, count, filled, status) in GROUPS.items():
            session.add(CustomerGroup(
                chat_id=chat_id, owner="zhangsan", segment=segment, name=f"群{chat_id}",
                member_count=count, status=status, created_at=old, updated_at=now,
                filled_at=now - timedelta(days=filled) if filled is not None else None))
        session.add(GroupPool(segment="online", config_id="jw1", qr_code="https://qr/jw1",
                              chat_ids='["wrLive"]', room_name="网店卖家交流群", version=1,
                              stale=False, updated_at=now))
        for userid in ("wmActive", "wmIdle"):
            session.add(GroupMember(chat_id="wrZombie", userid=userid, type=2, joined_at=old))
            await members.create(session, old, "test", external_userid=userid,
                                 staff_userid="lisi", channel="organic", segment="online")
        session.add(GroupMember(chat_id="wrZombie", userid="wmGone", type=2, joined_at=old,
                                left_at=now - timedelta(days=2)))
        session.add(GroupMember(chat_id="wrLive", userid="wmNew", type=2,
                                joined_at=now - timedelta(days=1)))
        session.add(KfConversation(open_kfid="wk1", external_userid="wmActive",
                                   last_customer_at=now - timedelta(days=1), answers=0,
                                   misses=0, updated_at=now))
    async with runtime.db.unit_of_work() as session:  # what the scheduler's jobs do
        await onboarding.start_due(session, runtime.flows.onboarding, now)
        await plan_migrations(session, runtime.flows, now, 1000002)


async def test_every_group_with_its_stage_health_and_plans(console: Console) -> None:
    await seed(console)
    page = await console.client.get("/console/groups")
    assert page.status_code == 200, page.text
    rows = table_rows(page.text)
    # Zombies first, then filling, strong, daily; within a stage in routing.yaml's segment
    # order; dismissed groups last.
    assert [r.data["chat"] for r in rows] == [
        "wrNorth", "wrZombie", "wrLive", "wrStray", "wrYoung", "wrDaily", "wrGone"]
    by_chat = {r.data["chat"]: r for r in rows}
    # Groups that never reached their ideal size are filling, however quiet (wrStray).
    assert {c: r.data["stage"] for c, r in by_chat.items()} == {
        "wrZombie": "weak", "wrYoung": "strong", "wrLive": "filling", "wrNorth": "weak",
        "wrStray": "filling", "wrDaily": "daily", "wrGone": "dismissed"}
    assert "招募期（未满员）" in by_chat["wrLive"].text
    zombie = by_chat["wrZombie"]
    assert "40/180" in zombie.text and "网店群" in zombie.text
    assert "退群 1" in zombie.text and "确认发布 0 天" in zombie.text
    # No chat archive here: activity unknown, and 微信客服 traffic is no group's activity, so
    # every customer still in the zombie group is invited.
    assert "无会话存档：入群退群与发帖" in zombie.text and "客服" not in zombie.text
    assert {a["data-source"] for a in marked(page.text, "source")} == {"fallback", ""}
    assert "已安排迁往「群wrLive」，邀请 2 人" in zombie.text
    assert "7d：第 3/7 天" in by_chat["wrYoung"].text  # filled three days ago
    assert "7d：已完成（7 天）" in by_chat["wrNorth"].text
    assert "接收新成员" in by_chat["wrLive"].text and "接收新成员" not in zombie.text
    assert "入群 1" in by_chat["wrLive"].text
    assert "未分群" in by_chat["wrStray"].text and "12/—" in by_chat["wrStray"].text
    scores = {a["data-score"] for a in marked(page.text, "score")}
    assert "" in scores  # the dismissed group has none
    assert {s["data-stage"]: s["data-count"] for s in marked(page.text, "count")} == {
        "weak": "2", "filling": "2", "strong": "1", "daily": "1", "dismissed": "1"}


async def test_the_activity_and_its_source_per_group(console: Console) -> None:
    """With the chat archive: a group it has counted shows its last 7 days (messages, customers
    who spoke, staff messages) under 会话存档; a group it never counted says it has no archive
    figures, and its owner's WeCom figures (all their groups, never this one's) are shown."""
    await seed(console)
    db, now = console.app.runtime.db, utcnow()
    talk = Talk(now)
    await feed(db, [talk.say("wrYoung", "wmA", 0), talk.say("wrYoung", "wmA", 1),
                    talk.say("wrYoung", "wmB", 2), talk.say("wrYoung", "zhangsan", 0),
                    talk.say("wrYoung", "wmC", 9)])  # before the 7 days
    async with db.unit_of_work() as session:
        session.add(OwnerGroupStat(owner="zhangsan", day=(now - timedelta(days=1)).date(),
                                   chat_total=6, chat_has_msg=2, member_total=380,
                                   member_has_msg=12, msg_total=57, new_member_cnt=3))
    page = await console.client.get("/console/groups")
    assert page.status_code == 200, page.text
    by_chat = {r.data["chat"]: r for r in table_rows(page.text) if "chat" in r.data}
    young = by_chat["wrYoung"].text
    assert "会话存档" in young and "无会话存档" not in young
    assert "消息 4" in young and "发言客户 2 人" in young and "员工消息 1" in young
    assert "客户发言 3 人 · 4 条" in young  # the lifecycle's window (14 days)
    assert "无会话存档：入群退群与发帖" in by_chat["wrZombie"].text
    assert "消息" not in by_chat["wrZombie"].cells[7]  # unknown, not zero
    assert "群主的企业微信统计见表下" in by_chat["wrZombie"].cells[7]
    [owner] = [r for r in table_rows(page.text) if r.data.get("owner")]
    assert owner.data["owner"] == "zhangsan" and "2 / 6" in owner.text and "57" in owner.text
    assert "按群主汇总其全部客户群，不是单个群的数据" in page.text
    assert "存档中还没有该群的消息" in page.text  # the archive is in use here


async def test_the_groups_come_in_pages(console: Console) -> None:
    now = utcnow()
    async with console.app.runtime.db.unit_of_work() as session:
        for n in range(PAGE_SIZE + 2):
            session.add(CustomerGroup(chat_id=f"wr{n:03d}", owner="zhangsan", segment="online",
                                      name=f"群{n:03d}", member_count=5, status="live",
                                      created_at=now, updated_at=now))
        session.add(CustomerGroup(chat_id="wrGone", owner="zhangsan", segment="online",
                                  name="散了", status="dismissed", created_at=now))
    first = await console.client.get("/console/groups")
    assert len(table_rows(first.text)) == PAGE_SIZE
    assert f"第 1 / 2 页（共 {PAGE_SIZE + 3} 个群）" in first.text
    assert 'href="/console/groups?segment=&amp;stage=&amp;page=2"' in first.text
    second = await console.client.get("/console/groups", params={"page": 2})
    assert [r.data["chat"] for r in table_rows(second.text)] == [
        f"wr{PAGE_SIZE:03d}", f"wr{PAGE_SIZE + 1:03d}", "wrGone"]  # the dismissed one last
    gone = await console.client.get("/console/groups", params={"stage": "dismissed"})
    assert [r.data["chat"] for r in table_rows(gone.text)] == ["wrGone"]
    assert (await console.client.get("/console/groups?page=0")).status_code == 422


async def test_filters_by_segment_and_stage(console: Console) -> None:
    await seed(console)
    online = await console.client.get("/console/groups", params={"segment": "online"})
    assert [r.data["chat"] for r in table_rows(online.text)] == [
        "wrZombie", "wrLive", "wrYoung", "wrGone"]
    weak = await console.client.get("/console/groups", params={"segment": "online",
                                                               "stage": "weak"})
    assert [r.data["chat"] for r in table_rows(weak.text)] == ["wrZombie"]
    # The counts above the table are the segment's, whatever the stage chosen.
    assert {s["data-stage"]: s["data-count"] for s in marked(weak.text, "count")}[
        "filling"] == "1"
    filling = await console.client.get("/console/groups", params={"stage": "filling"})
    assert [r.data["chat"] for r in table_rows(filling.text)] == ["wrLive", "wrStray"]
    stray = await console.client.get("/console/groups", params={"segment": "none"})
    assert [r.data["chat"] for r in table_rows(stray.text)] == ["wrStray"]
    nothing = await console.client.get("/console/groups", params={"stage": "strong",
                                                                  "segment": "reseller"})
    assert table_rows(nothing.text) == [] and "没有符合条件的群" in nothing.text
    for params, message in (({"segment": "mars"}, "未知的分群"), ({"stage": "zombie"},
                                                                "未知的阶段")):
        bad = await console.client.get("/console/groups", params=params)
        assert bad.status_code == 400 and message in bad.text


async def test_no_groups_yet(console: Console) -> None:
    page = await console.client.get("/console/groups")
    assert page.status_code == 200 and "sopbot groups sync" in page.text
    assert table_rows(page.text) == []


EMPTY_POOL = re.compile(r'<p data-empty-pool="([^"]+)">(.*?)</p>', re.S)


def banners(html: str) -> dict[str, str]:
    """segment → the banner's text (tags dropped)."""
    return {segment: re.sub(r"<[^>]+>", "", text) for segment, text in EMPTY_POOL.findall(html)}


async def test_an_empty_pool_shows_a_banner_on_every_page_while_it_lasts(
        console: Console) -> None:
    """Every group of 网店群 reached its ideal size: every page says so and the groups page
    marks the group still taking members; once a group with room exists, the banner is gone."""
    db, now = console.app.runtime.db, utcnow()
    await a_full_pool(db, now)
    for path in ("/console/funnel", "/console/groups", "/console/outbox"):
        page = await console.client.get(path)
        assert page.status_code == 200, page.text
        shown = banners(page.text)
        assert list(shown) == ["online"], path
        for said in ("「网店群」没有未满员的群", "网店卖家交流群1", "185/180", "已通知运营"):
            assert said in shown["online"], (path, said)
    [row] = table_rows((await console.client.get("/console/groups")).text)
    assert "已满员仍接收" in row.text and row.data["stage"] == "strong"
    async with db.unit_of_work() as session:  # the owner opened the next group
        session.add(CustomerGroup(
            chat_id="wrNext", owner="zhangsan", segment="online", name="网店卖家交流群2",
            member_count=1, status="live", created_at=now, updated_at=now))
    for path in ("/console/funnel", "/console/groups"):
        assert banners((await console.client.get(path)).text) == {}, path


async def test_the_banner_does_not_say_people_were_told_when_nobody_could_be(
        db_url: str) -> None:
    """Without WECOM_AGENT_ID no app message goes out: the banner must not say 已通知运营."""
    async with serve_app(console_settings(db_url, agent_id=None), run_worker=False) as app:
        await give_password(app, OPERATOR, PASSWORD)
        console = await logged_in(app, app.client)
        await a_full_pool(app.runtime.db, utcnow())
        shown = banners((await console.client.get("/console/groups")).text)["online"]
        assert "未能通知运营和群主（未设置 WECOM_AGENT_ID）" in shown and "已通知运营" not in shown


async def a_full_pool(db: Database, now: datetime) -> None:
    """网店群's only group has reached its ideal size (180) and still takes members."""
    async with db.unit_of_work() as session:
        session.add(CustomerGroup(
            chat_id="wrFull", owner="zhangsan", segment="online", name="网店卖家交流群1",
            member_count=185, status="live", created_at=now - timedelta(days=9),
            updated_at=now, filled_at=now - timedelta(days=2)))
        session.add(GroupPool(segment="online", config_id="jw1", qr_code="https://qr/jw1",
                              chat_ids='["wrFull"]', room_name="网店卖家交流群", version=1,
                              stale=False, updated_at=now))
