"""/console/content: operators queue, edit, reorder, remove and preview the columns' items,
behind the console's login and CSRF check, and the calendar's slots take them in that order."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from app.calendar import content
from app.calendar.models import ContentItem
from app.engine.db import utcnow
from tests.conftest import OPERATOR, rows_of, serve_app
from tests.console.conftest import PASSWORD, Console, console_settings, give_password, logged_in
from tests.console.tables import marked


@pytest.fixture
async def console(db_url: str) -> AsyncIterator[Console]:
    async with serve_app(console_settings(db_url, outbox_sender=False),
                         run_worker=False) as app:
        await give_password(app, OPERATOR, PASSWORD)
        yield await logged_in(app, app.client)


def queue(html: str) -> list[str]:
    """The queued items' ids, in the page's (the queue's) order."""
    return [a["data-item"] for a in marked(html, "item")]


def notice(html: str) -> str:
    found = re.search(r"data-notice>([^<]*)<", html)
    return found.group(1) if found else ""


async def test_queue_edit_reorder_remove_and_preview(console: Console) -> None:
    first = await console.post("/console/content/add", {
        "column": "guest_talk", "title": "本周嘉宾：王姐", "body": "聊聊换季备货",
        "link": "https://example.com/talk", "image": "https://img.example.com/wang.jpg"})
    assert first.status_code == 303 and first.headers["location"] == \
        "/console/content?column=guest_talk"
    page = await console.client.get(first.headers["location"])
    assert notice(page.text) == "已加入队列：#1。"
    assert "【嘉宾分享会】本周嘉宾：王姐\n聊聊换季备货\nhttps://example.com/talk" in page.text
    assert 'data-image>图片：<a href="https://img.example.com/wang.jpg"' in page.text
    for title in ("第二条", "第三条"):
        await console.post("/console/content/add", {"column": "guest_talk", "title": title})
    await console.post("/console/content/3/move", {"direction": "up"})
    page = await console.client.get("/console/content?column=guest_talk")
    assert queue(page.text) == ["1", "3", "2"] and notice(page.text) == "已上移：#3。"
    edited = await console.post("/console/content/2/edit", {"title": "第二条（改）",
                                                             "body": "新正文"})
    assert edited.status_code == 303
    await console.post("/console/content/1/delete")
    page = await console.client.get("/console/content?column=guest_talk")
    assert queue(page.text) == ["3", "2"] and "第二条（改）\n新正文" in page.text
    counts = {a["data-column"]: a["data-count"] for a in marked(page.text, "column")}
    assert counts["guest_talk"] == "2" and counts["endorsement"] == "0"
    # The slots take them in the operators' order.
    async with console.app.runtime.db.unit_of_work() as session:
        taken = await content.take(session, "guest_talk", "shop_north:20261202:slot2", utcnow())
        assert taken is not None and taken.title == "第三条"
    # A taken item is history: editing it changes nothing, and the notice says so.
    gone = await console.post("/console/content/3/edit", {"title": "迟到的修改"})
    page = await console.client.get(gone.headers["location"])
    assert notice(page.text) == "#3 已被发布取用或已删除，未作更改。"
    titles = {i.id: i.title for i in await rows_of(console.app.runtime.db, ContentItem)}
    assert titles == {2: "第二条（改）", 3: "第三条"}


async def test_a_refused_item_keeps_the_form_and_stores_nothing(console: Console) -> None:
    bad = await console.post("/console/content/add", {
        "column": "star_picks", "title": "爆款", "body": "说明", "link": "ftp://nope"})
    assert bad.status_code == 400 and "链接需以 http:// 或 https:// 开头。" in bad.text
    assert 'value="爆款"' in bad.text and ">说明</textarea>" in bad.text
    unknown = await console.post("/console/content/add", {"column": "gossip", "title": "x"})
    assert unknown.status_code == 400 and "未知的栏目。" in unknown.text
    assert await rows_of(console.app.runtime.db, ContentItem) == []
    # Without the session's CSRF token nothing is added.
    forged = await console.client.post("/console/content/add",
                                       data={"column": "star_picks", "title": "x"})
    assert forged.status_code == 403
    assert await rows_of(console.app.runtime.db, ContentItem) == []


async def test_a_column_sopbot_fills_is_not_an_empty_queue_to_fill(console: Console) -> None:
    """The 光荣榜 (calendar.yaml `generated`) is made by sopbot on its day: the page says so
    instead of asking for content; an operator's own column still says it is empty."""
    roll = await console.client.get("/console/content", params={"column": "honor_roll"})
    assert "data-generated" in roll.text and "无需手动添加" in roll.text
    topic = await console.client.get("/console/content", params={"column": "topic"})
    assert "data-generated" not in topic.text and "队列是空的" in topic.text
