"""The weekly 光荣榜 (app/koc/honor.py) and KOCs (app/koc/kocs.py): the roll is one item per
segment on its weekday, named by group nicknames, taken only by that segment's slot; candidates
are scored from referrals, answers and contributions; promotion tags through the outbox."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.models import MemberStrike, SpeakerDay
from app.calendar import content
from app.calendar.flows import CalendarFlows
from app.calendar.models import ContentItem
from app.calendar.preview import preview
from app.engine.config import SHANGHAI
from app.engine.db import Database
from app.engine.outbox.models import OutboxMessage
from app.groups.models import CustomerGroup, GroupMember
from app.koc import honor, kocs
from app.koc.models import KocAssignment, KocMember
from app.routing.models import CorpTag
from tests.conftest import rows_of
from tests.koc.people import T0, db, flows, koc, member, recommender
from tests.koc.test_rewards import credit

__all__ = ["db"]
MONDAY = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
ROLL_SLOT = {"time": "19:30", "column": "honor_roll", "priority": 2, "weekdays": [1]}


def calendar_with_rolls(*segments: str) -> CalendarFlows:
    """The sample calendar with a 光荣榜 slot in these segments (the sample has it commented)."""
    data = flows().calendar.model_dump(exclude_none=True)
    for segment in segments:
        data["segments"][segment]["slots"] = [*data["segments"][segment]["slots"], ROLL_SLOT]
    return CalendarFlows.model_validate(data)


async def make_week(session: AsyncSession, now: datetime,
                    calendar: CalendarFlows | None = None) -> list[str]:
    return await honor.make_week(session, koc(), calendar or calendar_with_rolls(
        "shop_north", "shop_south"), flows().routing.segment_labels(), now)


async def north_group(db: Database, *nicknamed: tuple[str, str]) -> None:
    async with db.unit_of_work() as session:
        session.add(CustomerGroup(chat_id="wrNorth", segment="shop_north", name="华北店主群1",
                                  owner="zhangsan", status="live"))
        for userid, nickname in nicknamed:
            session.add(GroupMember(chat_id="wrNorth", userid=userid, type=2, joined_at=T0,
                                    nickname=nickname))


async def answers(db: Database, userid: str, n: int, day: date = date(2026, 11, 20)) -> None:
    async with db.unit_of_work() as session:
        session.add(SpeakerDay(chat_id="wrNorth", day=day, userid=userid, messages=n,
                               answers=n))


async def test_the_roll_names_the_week_s_best_by_their_group_nickname(db: Database) -> None:
    star, helper = await member(db), await member(db)
    await north_group(db, (star.external_userid, "华北-实体店-老王"),
                      (helper.external_userid, "华北-网店-小李"))
    await credit(db, await recommender(db, star), 2, at=datetime(2026, 11, 20, tzinfo=UTC))
    await answers(db, helper.external_userid, 4)
    async with db.unit_of_work() as session:
        assert await make_week(session, MONDAY) == ["shop_north", "shop_south"]
        assert await make_week(session, MONDAY) == []  # once a week
    north, south = await rows_of(db, ContentItem)
    assert (north.column_name, north.segment) == ("honor_roll", "shop_north")
    label = flows().routing.segments["shop_north"].label
    assert north.title == f"{label}光荣榜（11-23 周）"
    assert "推荐之星 第 1 名：华北-实体店-老王，推荐 2 位同行入群" in north.body
    assert "热心答疑 第 1 名：华北-网店-小李，解答 4 个问题" in north.body
    assert south.body == koc().texts.honor_empty


async def test_the_roll_is_made_on_its_weekday_where_a_slot_takes_it(db: Database) -> None:
    async with db.unit_of_work() as session:
        assert await make_week(session, datetime(2026, 11, 24, tzinfo=UTC)) == []
        # ... and for the segments whose calendar has its column.
        assert await make_week(session, MONDAY, calendar_with_rolls("reseller")) == ["reseller"]
    assert [i.segment for i in await rows_of(db, ContentItem)] == ["reseller"]


async def test_a_segment_s_roll_is_taken_only_by_that_segment(db: Database) -> None:
    async with db.unit_of_work() as session:
        await content.add(session, "honor_roll", "北", "b", None, T0, segment="shop_north")
        assert await content.take(session, "honor_roll", "s:1", T0, "shop_south") is None
        taken = await content.take(session, "honor_roll", "n:1", T0, "shop_north")
        assert taken is not None and taken.title == "北"


async def test_candidates_are_scored_from_referrals_answers_and_contributions(
        db: Database) -> None:
    recommending, answering, quiet = await member(db), await member(db), await member(db)
    await credit(db, await recommender(db, recommending), 2, at=T0)
    await answers(db, answering.external_userid, 2, day=date(2026, 11, 18))
    async with db.unit_of_work() as session:
        session.add(MemberStrike(chat_id="wrNorth", userid=answering.external_userid,
                                 msgid="m1", rule="intro", kind="contribution", points=2,
                                 at=T0))
        session.add(MemberStrike(chat_id="wrNorth", userid=quiet.external_userid, msgid="m2",
                                 rule="intro", kind="contribution", points=1, at=T0))
        found = await kocs.candidates(session, koc(), T0)
    assert [(c.member_id, c.score, c.reasons) for c in found] == [
        (recommending.id, 6, {"referrals": 2}),
        (answering.id, 6, {"answers": 2, "contributions": 2})]  # quiet: 1 < min_score 6


async def test_promotion_needs_the_koc_tag(db: Database) -> None:
    who = await member(db)
    async with db.unit_of_work() as session:
        with pytest.raises(kocs.NoKocTag):
            await kocs.set_koc(session, who, True, "op_alice", T0)


async def test_promotion_and_demotion_tag_through_the_outbox(db: Database) -> None:
    who = await member(db)
    async with db.unit_of_work() as session:
        session.add(CorpTag(dimension="koc", value="koc", tag_id="etKOC", group_id="etG",
                            synced_at=T0))
    for promote, at in ((True, T0), (True, MONDAY), (False, MONDAY)):
        async with db.unit_of_work() as session:
            await kocs.set_koc(session, who, promote, "op_alice", at)
    calls = [json.loads(r.request) for r in await rows_of(db, OutboxMessage)]
    assert [(c.get("add_tag"), c.get("remove_tag")) for c in calls] == [
        (["etKOC"], None), (None, ["etKOC"])]  # the second promotion changed nothing
    row, = await rows_of(db, KocMember)
    assert (row.status, row.demoted_by) == ("former", "op_alice")


async def test_a_topic_is_queued_for_the_koc_s_segment_and_their_staff_told(
        db: Database) -> None:
    who = await member(db, segment="shop_south")
    async with db.unit_of_work() as session:
        with pytest.raises(kocs.NotKoc):  # topics are for KOCs only
            await kocs.assign(session, who, kocs.TOPIC, "冬季备货怎么选", "op_alice", T0,
                              koc(), 1000002)
        session.add(KocMember(member_id=who.id, promoted_by="op_alice", promoted_at=T0))
        await session.flush()
        await kocs.assign(session, who, kocs.TOPIC, "冬季备货怎么选", "op_alice", T0, koc(),
                          1000002)
        await kocs.assign(session, who, kocs.GUEST, "档口经营心得", "op_alice", T0, koc(),
                          1000002)
    item, = await rows_of(db, ContentItem)
    assert (item.column_name, item.segment, item.title) == ("topic", "shop_south", "冬季备货怎么选")
    assert item.body == koc().texts.topic_body.format(name="热心群友")
    assert [a.kind for a in await rows_of(db, KocAssignment)] == ["topic", "guest"]
    told = [json.loads(r.request) for r in await rows_of(db, OutboxMessage)]
    assert [t["touser"] for t in told] == ["zhangsan", "zhangsan"]  # nothing for the refusal
    assert "档口经营心得" in told[1]["text"]["content"]


async def test_the_roll_s_groups_are_read_again_the_day_before(db: Database) -> None:
    await north_group(db)
    calendar = calendar_with_rolls("shop_north")
    sunday = datetime(2026, 11, 22, 1, tzinfo=UTC)
    async with db.unit_of_work() as session:
        assert await honor.refresh_nicknames(session, koc(), calendar, MONDAY) == 0
        assert await honor.refresh_nicknames(session, koc(), calendar, sunday) == 1
        assert await honor.refresh_nicknames(session, koc(), calendar, sunday) == 1
    read, = await rows_of(db, OutboxMessage)  # once a day, however often the job runs
    assert read.api == "externalcontact/groupchat/get"
    assert json.loads(read.request)["chat_id"] == "wrNorth"


async def test_the_calendar_shows_the_roll_as_sopbot_s_and_each_segment_its_own(
        db: Database) -> None:
    """Before its day the roll is sopbot's to make, not an empty queue an operator must fill;
    once made, each segment's slot shows that segment's roll only."""
    calendar = calendar_with_rolls("shop_north", "shop_south")
    monday = MONDAY.astimezone(SHANGHAI).date()
    async with db.reader() as session:
        lines = await preview(session, calendar, monday, 1)
    rolls = [line for line in lines if "光荣榜" in line]
    assert len(rolls) == 2 and all("made by sopbot on the day" in line for line in rolls)
    async with db.unit_of_work() as session:
        await content.add(session, "honor_roll", "南方榜", "b", None, T0, segment="shop_south")
    async with db.reader() as session:
        lines = await preview(session, calendar, monday, 1)
    north = lines.index(next(line for line in lines if line.startswith("  shop_north")))
    south = lines.index(next(line for line in lines if line.startswith("  shop_south")))
    assert "南方榜" not in "\n".join(lines[north:south])
    assert "南方榜" in "\n".join(lines[south:])
