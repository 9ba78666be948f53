"""Members and recommenders for the referral programme's tests, made with the domain's own
functions on a real database (SQLite, and PostgreSQL when SOPBOT_TEST_PG_URL is set)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import cache
from itertools import count
from typing import Any

import pytest

from app.engine.db import Database
from app.flows import Flows, load_flows
from app.koc.flows import KocFlows
from app.koc.models import CODE_READY, Recommender
from app.members import service as members
from app.members.models import JOINED, LINKED, ROUTED, Member
from tests.conftest import REPO

T0 = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Shanghai
_numbers = count(1)


@cache
def flows() -> Flows:
    return load_flows(REPO / "sop_flows")


def koc(**changes: Any) -> KocFlows:
    loaded = flows().koc
    assert loaded is not None
    return KocFlows.model_validate(loaded.model_dump() | changes) if changes else loaded


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


async def member(db: Database, *, phone: str | None = None, platform: str | None = None,
                 identity: str = "physical_shop", status: str = JOINED,
                 link_state: str | None = LINKED, segment: str = "shop_north",
                 state: str = "", at: datetime = T0) -> Member:
    """A member as the funnel leaves them: by default a verified shop owner in their group."""
    n = next(_numbers)
    async with db.unit_of_work() as session:
        return await members.create(
            session, at, "test", external_userid=f"wm{n:06d}", staff_userid="zhangsan",
            channel="organic", phone=phone or f"139{n:08d}",
            platform_user_id=platform or f"u{n}", identity_type=identity, status=status,
            link_state=link_state, segment=segment, region="华东", state=state,
            group_chat_id="wrNorth" if status == JOINED else None)


async def recommender(db: Database, owner: Member | None = None) -> Recommender:
    """A recommender with a ready code (as if WeCom had made it)."""
    owner = owner or await member(db)
    async with db.unit_of_work() as session:
        rec = Recommender(member_id=owner.id, short_id=f"r{next(_numbers):07d}", source="test",
                          code=CODE_READY, config_id=f"cfg{owner.id}", qr_code="https://qr",
                          code_at=T0, created_at=T0)
        session.add(rec)
    return rec


async def change(db: Database, who: Member, **fields: Any) -> None:
    async with db.unit_of_work() as session:
        row = await session.get(Member, who.id)
        assert row is not None
        await members.change(session, row, T0, "test", **fields)


__all__ = ["JOINED", "LINKED", "ROUTED", "T0", "change", "db", "flows", "koc", "member",
           "recommender"]
