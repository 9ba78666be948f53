"""The onboarding campaign's self-introduction day says how many of the group's customers have
not introduced themselves yet: only when the chat archive is read here, and only when some
have not (sop_flows/onboarding_7d.yaml's {not_introduced})."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from app.archive.models import ArchiveReader
from app.calendar.models import SopRun
from app.calendar.onboarding import Campaign, today
from app.engine.db import Database
from app.flows import load_flows
from app.groups.models import CustomerGroup, GroupMember
from tests.archive.test_newcomers import RULES
from tests.archive.test_questions import T0, Chat, feed
from tests.conftest import REPO

CAMPAIGNS = load_flows(REPO / "sop_flows").onboarding
INTRO_DAY = T0.date()  # day 4 of the 7-day campaign: 自我介绍接龙


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    async with database.unit_of_work() as session:
        session.add(CustomerGroup(chat_id="wrNorth", segment="shop_north", name="北方群",
                                  owner="zhangsan", status="live"))
        session.add(SopRun(chat_id="wrNorth", campaign="7d", status="active", last_day=3,
                           started_on=str(INTRO_DAY - timedelta(days=3)), created_at=T0))
        for userid, kind in (("wmA", 2), ("wmB", 2), ("wmC", 2), ("zhangsan", 1)):
            session.add(GroupMember(chat_id="wrNorth", userid=userid, type=kind,
                                    joined_at=T0 - timedelta(hours=1)))
    yield database
    await database.dispose()


async def intro_text(db: Database, day: date = INTRO_DAY) -> str:
    async with db.reader() as session:
        [due] = await today(session, CAMPAIGNS, day, {"wrNorth": "北方群"})
    assert due.post.text is not None
    return due.post.text


async def test_the_intro_day_counts_who_has_not_introduced_themselves(db: Database) -> None:
    chat = Chat()
    await feed(db, [chat.say("wrNorth", "wmA", "大家好，我是广州的小美，做童装批发", 0)],
               intros=RULES)
    # Without the archive nothing is claimed: the text ends as written.
    assert (await intro_text(db)).endswith("工作人员会优先帮你对接合适的档口。")
    async with db.unit_of_work() as session:
        session.add(ArchiveReader(corp_id="wwcorp"))
    assert (await intro_text(db)).endswith(
        "档口。目前群里还有 2 位新朋友没做自我介绍，等你来接龙！")
    assert "{" not in await intro_text(db, INTRO_DAY - timedelta(days=1))  # another day
    await feed(db, [chat.say("wrNorth", "wmB", "我是郑州的实体店主，做女装生意", 1),
                    chat.say("wrNorth", "wmC", "我是杭州的网店店主，做饰品的", 2)], intros=RULES)
    assert (await intro_text(db)).endswith("工作人员会优先帮你对接合适的档口。")


def test_a_text_naming_newcomers_needs_the_sentence() -> None:
    days = {1: {"action": "self_intro", "text": "自我介绍接龙。{not_introduced}"}}
    with pytest.raises(ValidationError, match="not_introduced sentence"):
        Campaign.model_validate({"days": days})
    with pytest.raises(ValidationError, match="unknown placeholder"):
        Campaign.model_validate({"days": days, "not_introduced": "还有 {n} 位"})
    assert Campaign.model_validate({"days": days, "not_introduced": "还有 {count} 位"})
