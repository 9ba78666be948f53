"""Corp tags: `sopbot tags sync` makes one group per dimension with a tag per identity type,
channel and region, once; a routed member is tagged through the outbox."""

from __future__ import annotations

from sqlalchemy import select

from app.engine.db import Database
from app.engine.wecom.wiring import build_wecom
from app.flows import load_flows
from app.routing.models import CorpTag
from app.routing.tags import sync_tags
from tests.conftest import REPO, make_settings
from tests.fakes.wecom import FakeWeCom

FLOWS = load_flows(REPO / "sop_flows")
ADD = "externalcontact/add_corp_tag"


async def test_tags_are_made_once_and_stored(db_url: str) -> None:
    fake = FakeWeCom()
    settings = make_settings(db_url, agent_secret="agent-secret")
    db = Database(db_url)
    http, wecom, _ = build_wecom(settings, db, fake.transport)
    try:
        lines = await sync_tags(db, wecom, FLOWS)
        # koc: the KOC tag, since sop_flows has the recommender programme (koc.yaml)
        assert [line.split(":")[0] for line in lines] == ["identity", "channel", "region", "koc"]
        adds = fake.calls_to(ADD)
        assert [a.body["group_name"] for a in adds] == [
            "商家身份", "来源渠道", "所在地区", "社群角色"]
        assert [t["name"] for t in adds[3].body["tag"]] == ["KOC"]
        assert [t["name"] for t in adds[0].body["tag"]] == ["实体店", "微商", "网店"]
        assert len(adds[2].body["tag"]) == len(FLOWS.verify.regions)
        async with db.reader() as session:
            rows = list((await session.execute(select(CorpTag))).scalars())
        assert len(rows) == 3 + len(FLOWS.funnel.channels) + len(FLOWS.verify.regions) + 1
        assert len({row.tag_id for row in rows}) == len(rows)
        await sync_tags(db, wecom, FLOWS)  # again: everything exists, nothing added
        assert len(fake.calls_to(ADD)) == 4
    finally:
        await http.aclose()
        await db.dispose()
