"""The content queue from the command line (`sopbot content add|list|import`), the queue's
order (operators reorder it) and an item's image going with the mass task."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from app.calendar import content
from app.calendar.models import ContentItem
from app.calendar.posting import post_due
from app.engine.config import SHANGHAI
from app.engine.db import Database, utcnow
from app.engine.outbox.models import OutboxMessage
from app.faces.cli.main import cli
from app.flows import load_flows
from app.groups.models import CustomerGroup
from tests.conftest import REPO
from tests.funnel.test_codes import env_file

FLOWS = load_flows(REPO / "sop_flows")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_add_list_and_import(db_url: str, tmp_path: Path) -> None:
    env = str(env_file(tmp_path, db_url))
    code, out = invoke("content", "add", "guest_talk", "本周嘉宾：郑州童装店主王姐", "--body",
                       "聊聊换季备货", "--image", "https://img.example.com/wang.jpg",
                       "--env-file", env)
    assert (code, out.strip()) == (0, "queued #1 in guest_talk")
    batch = tmp_path / "items.yaml"
    batch.write_text("- {column: endorsement, title: 店主代言：李哥的回头客, link: "
                     "'https://example.com/li'}\n- {column: guest_talk, title: 下周嘉宾预告}\n",
                     encoding="utf-8")
    assert invoke("content", "import", str(batch), "--env-file", env)[0] == 0
    code, listed = invoke("content", "list", "--column", "guest_talk", "--env-file", env)
    assert code == 0 and listed.splitlines() == [
        "guest_talk 《嘉宾分享会》: 2 queued",
        "  #1 本周嘉宾：郑州童装店主王姐 [image https://img.example.com/wang.jpg]",
        "  #3 下周嘉宾预告"]
    # One bad item refuses the whole file: nothing of it is queued.
    batch.write_text("- {column: endorsement, title: 好的}\n- {column: gossip, title: 坏的}\n",
                     encoding="utf-8")
    code, out = invoke("content", "import", str(batch), "--env-file", env)
    assert code == 2 and "item 2: unknown column 'gossip'" in out
    code, out = invoke("content", "add", "endorsement", "x", "--link", "ftp://x", "--env-file",
                       env)
    assert code == 2 and "the link must be an http(s) address" in out
    assert "endorsement 《店主代言》: 1 queued" in invoke("content", "list", "--env-file", env)[1]
    # A file written for POST /api/content (image_url) imports; a link that is not a text is
    # named, not a traceback.
    batch.write_text("- {column: endorsement, title: API 的格式, image_url: "
                     "'https://img.example.com/a.jpg'}\n", encoding="utf-8")
    assert invoke("content", "import", str(batch), "--env-file", env)[0] == 0
    batch.write_text("- {column: endorsement, title: 坏链接, link: 42}\n", encoding="utf-8")
    code, out = invoke("content", "import", str(batch), "--env-file", env)
    assert code == 2 and "link: a text is expected" in out and "Traceback" not in out


async def test_the_queue_follows_the_operators_order(db_url: str) -> None:
    db = Database(db_url)
    try:
        async with db.unit_of_work() as session:
            first, second, third = [await content.add(session, "star_picks", t, "", None,
                                                      utcnow()) for t in ("一", "二", "三")]
            assert await content.move(session, third, up=True)
            assert await content.move(session, third, up=True)
            assert not await content.move(session, third, up=True)  # already first
            assert await content.move(session, first, up=False)
        async with db.reader() as session:
            assert [i.title for i in await content.queued(session, "star_picks")] == [
                "三", "二", "一"]
        async with db.unit_of_work() as session:
            taken = await content.take(session, "star_picks", "k1", utcnow())
            assert taken is not None and taken.title == "三"
    finally:
        await db.dispose()


async def test_an_items_image_goes_with_the_mass_task(db_url: str) -> None:
    from datetime import datetime

    db = Database(db_url)
    now = datetime(2026, 12, 1, 10, 5, tzinfo=SHANGHAI)
    calendar = FLOWS.calendar.model_copy(update={"internal": {}, "segments": {
        "online": FLOWS.calendar.segments["online"]}})
    try:
        async with db.unit_of_work() as session:
            session.add(CustomerGroup(chat_id="wrO", owner="lisi", segment="online", name="网店群",
                                      member_count=3, status="live", created_at=now,
                                      updated_at=now))
            await content.add(session, "new_arrivals", "新款卫衣", "", None, now,
                              "https://img.example.com/hoodie.jpg")
        await post_due(db, calendar, now, 1000002)
        async with db.reader() as session:
            [row] = list(await session.scalars(select(OutboxMessage)))
            assert (await session.scalar(select(ContentItem.used_for))) is not None
        task = json.loads(row.request)
        assert task["attachments"] == [{"msgtype": "image", "image": {
            "pic_url": "https://img.example.com/hoodie.jpg"}}]
    finally:
        await db.dispose()


