"""Group commit: callbacks stored together, and one bad row does not fail its neighbours."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from app.engine.config import Settings
from app.engine.db import Database
from app.engine.inbox.models import InboxEvent
from app.engine.inbox.writer import InboxWriter
from app.engine.wecom.parsing import event_from_xml
from tests.conftest import CORP_ID
from tests.fakes import payloads


@pytest.fixture
async def writer(settings: Settings):  # type: ignore[no-untyped-def]
    db = Database(settings.database_url)
    yield InboxWriter(db)
    await db.dispose()


def contact() -> tuple[object, str]:
    plaintext = payloads.external_contact(corp_id=CORP_ID)
    return event_from_xml(plaintext), plaintext


async def stored_payloads(writer: InboxWriter) -> list[str]:
    async with writer.db.reader() as session:
        return list((await session.execute(
            select(InboxEvent.payload).order_by(InboxEvent.id))).scalars())


async def test_concurrent_callbacks_share_batches_and_twins_are_duplicates(
        writer: InboxWriter) -> None:
    items = [contact() for _ in range(20)]
    twin = items[3]
    results = await asyncio.gather(*(writer.accept(e, p, "cb") for e, p in [*items, twin]))
    assert [r.duplicate for r in results] == [False] * 20 + [True]
    assert results[-1].inbox_id == results[3].inbox_id
    assert len({r.inbox_id for r in results}) == 20
    assert await stored_payloads(writer) == [p for _, p in items]


async def test_one_bad_row_fails_alone(writer: InboxWriter) -> None:
    good_before, good_after = contact(), contact()
    bad_event, _ = contact()
    results = await asyncio.gather(
        writer.accept(*good_before, "cb1"),
        writer.accept(bad_event, None, "cb2"),  # type: ignore[arg-type]  # NOT NULL payload
        writer.accept(*good_after, "cb3"),
        return_exceptions=True)
    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], Exception)
    assert not isinstance(results[2], BaseException)
    assert await stored_payloads(writer) == [good_before[1], good_after[1]]
