"""/console/members: search by each key, paging, and one member's history, verifications,
funnel events and what they said in each group (the chat archive's rollups)."""

from __future__ import annotations

import re
from datetime import timedelta

from app.engine.db import utcnow
from app.groups.models import CustomerGroup
from app.members import service as members
from tests.archive.test_reports import Talk, feed
from tests.conftest import OPERATOR
from tests.console.conftest import Console
from tests.console.people import (  # noqa: F401 (console_app: the fixture with a photo dir)
    add_directory,
    add_member,
    console_app,
    decide,
    pending_review,
)
from tests.console.tables import table_rows

MEMBER_IDS = re.compile(r'<tr class="mb-row" data-member="(\d+)"')
CHANGES = re.compile(r'<tr class="mb-change">\s*<td>[^<]*</td>\s*<td>([^<]*)</td>\s*'
                     r'<td class="mb-old">([^<]*)</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>')


async def found(console: Console, **params: str) -> list[int]:
    page = await console.client.get("/console/members", params=params)
    assert page.status_code == 200, page.text
    return [int(n) for n in MEMBER_IDS.findall(page.text)]


async def seed(console: Console) -> dict[str, int]:
    """Four members: approved with a directory name, two pending, one who only added."""
    app = console.app
    await add_directory(app, "P-1001", "13900139000", "张三五金店")
    zhang = await pending_review(app, "wm_zhang", phone="13900139000")
    await decide(console, [zhang], "approve")
    await pending_review(app, "wm_li", phone="13700131234", region="北京")
    await pending_review(app, "wm_wang", phone="13600139000")  # the same last 4 as zhang
    await add_member(app, "wm_new")
    return {name: n for n, name in enumerate(("wm_zhang", "wm_li", "wm_wang", "wm_new"), 1)}


async def test_search_by_each_key(console: Console) -> None:
    ids = await seed(console)
    zhang, li, wang, new = (ids[k] for k in ("wm_zhang", "wm_li", "wm_wang", "wm_new"))
    assert await found(console) == [new, wang, li, zhang]  # newest first
    assert await found(console, q="13900139000") == [zhang]
    assert await found(console, q="+86 139-0013-9000") == [zhang]
    assert await found(console, q="9000") == [wang, zhang]  # the last 4 digits
    assert await found(console, q="1234") == [li]
    assert await found(console, q="五金") == [zhang]  # the directory's name
    assert await found(console, q="wm_li") == [li]
    assert await found(console, q="P-1001") == [zhang]  # the platform user id
    assert await found(console, q="wm_") == []  # ids match whole, not in part
    assert await found(console, q="%") == []  # a LIKE wildcard is a plain character
    assert await found(console, status="submitted") == [wang, li]
    assert await found(console, q="9000", status="routed") == [zhang]
    page = (await console.client.get("/console/members", params={"q": "9000"})).text
    assert "139****9000" in page and "13900139000" not in page
    assert "张三五金店" in page and "实体店·南方群" in page and "抖音" in page
    assert 'data-count="2"' in page
    empty = await console.client.get("/console/members", params={"q": "nobody"})
    assert "没有找到符合条件的会员" in empty.text
    bad = await console.client.get("/console/members", params={"status": "vip"})
    assert bad.status_code == 400 and "未知的状态" in bad.text


async def test_the_list_is_paged(console: Console) -> None:
    async with console.app.runtime.db.unit_of_work() as session:
        for n in range(53):
            await members.create(session, utcnow(), "callback", channel="douyin",
                                 external_userid=f"wm_{n:03}", staff_userid="lisi")
    first = await console.client.get("/console/members", params={"status": "added"})
    assert '<option value="added" selected>已加好友</option>' in first.text  # the filter kept
    assert len(MEMBER_IDS.findall(first.text)) == 50 and "第 1 / 2 页" in first.text
    assert 'href="/console/members?q=&amp;status=added&amp;page=2"' in first.text
    assert await found(console, status="added", page="2") == [3, 2, 1]
    assert (await console.client.get("/console/members?page=0")).status_code == 422


async def test_the_detail_shows_history_verifications_and_funnel(console: Console) -> None:
    ids = await seed(console)
    page = await console.client.get(f"/console/members/{ids['wm_zhang']}")
    assert page.status_code == 200
    html = page.text
    changes = CHANGES.findall(html)
    # Newest first: routing, then the review, then the submission, then the friend add.
    assert changes[0][3] == "分群规则" and changes[-1][3] == "企业微信事件"
    assert ("状态", "审核通过", "已分群", "分群规则") in changes
    assert ("状态", "待审核", "审核通过", "审核：op_alice") in changes
    assert ("手机号", "—", "139****9000", "提交认证") in changes
    assert ("分群", "—", "实体店·南方群", "分群规则") in changes
    assert "13900139000" not in html  # masked in the history as well
    assert 'href="/console/reviews/1"' in html and "您（op_alice）" in html
    steps = re.findall(r'<tr data-step="([a-z_]+)">', html)
    assert steps == ["routed", "approved", "submitted"]  # newest first
    assert "张三五金店" in html and "P-1001" in html and "lisi" in html
    nobody = await console.client.get("/console/members/999")
    assert nobody.status_code == 404 and "找不到这位会员" in nobody.text
    assert (await console.client.get(f"/console/members/{2**63}")).status_code == 422


async def test_two_members_sharing_a_phone_are_resolved_by_unlinking_one(
        console: Console) -> None:
    """What migration 0018 leaves: two members both holding a phone (`duplicate`). Unlinking
    one on its page (a reason required) links the other again, under the unique index."""
    from app.members.models import Member, MemberHistory
    from tests.console.people import add_member, fetch

    app = console.app
    ids = [await add_member(app, f"wm_dup_{n}") for n in (1, 2)]
    async with app.runtime.db.unit_of_work() as session:
        for member_id in ids:
            member = await session.get(Member, member_id)
            assert member is not None
            member.phone, member.platform_user_id, member.link_state = (
                "13700137000", "P-7", "duplicate")
    page = (await console.client.get(f"/console/members/{ids[0]}")).text
    assert "重复绑定：与其他会员共用" in page and f'data-holder="{ids[1]}"' in page
    assert f'action="/console/members/{ids[0]}/unlink"' in page
    refused = await console.post(f"/console/members/{ids[0]}/unlink", {"reason": " "})
    assert refused.status_code == 400 and "解除绑定需要填写原因" in refused.text
    done = await console.post(f"/console/members/{ids[0]}/unlink",
                              {"reason": "旧微信号，店主已换号"})
    assert done.status_code == 303
    first, second = [(await fetch(app, Member, id=i))[0] for i in ids]
    assert (first.link_state, first.flag, first.phone) == (None, "unlinked", "13700137000")
    assert second.link_state == "linked"
    notes = [(h.field, h.new, h.source) for h in await fetch(app, MemberHistory,
                                                              member_id=ids[0])]
    assert ("unlinked", "旧微信号，店主已换号", f"review:{OPERATOR}") in notes
    again = await console.post(f"/console/members/{ids[0]}/unlink", {"reason": "再来一次"})
    assert again.status_code == 409


async def test_the_record_shows_what_the_member_said_in_each_group(console: Console) -> None:
    """Without the chat archive the record says so; with it, per group: when they last spoke,
    their messages over 7 and 30 days and in all, and the questions they answered."""
    app = console.app
    member_id = await add_member(app, "wm_talk")
    before = (await console.client.get(f"/console/members/{member_id}")).text
    assert 'data-talk="none"' in before and "未启用会话存档" in before
    now = utcnow()
    async with app.runtime.db.unit_of_work() as session:
        session.add(CustomerGroup(chat_id="wrShop", name="实体店交流群", owner="zhangsan",
                                  status="live"))
    talk = Talk(now - timedelta(minutes=30))
    await feed(app.runtime.db, [
        talk.say("wrShop", "wm_other", 1, "请问有没有冰柜的货源？"),
        talk.say("wrShop", "wm_talk", 1, "有的，我发你链接", minutes=3),  # an answer
        talk.say("wrShop", "wm_talk", 12), talk.say("wrShop", "wm_talk", 60),
        talk.say("wrElse", "wm_talk", 0)])
    html = (await console.client.get(f"/console/members/{member_id}")).text
    rows = {r.data["talk"]: r for r in table_rows(html) if "talk" in r.data}
    assert list(rows) == ["wrElse", "wrShop"]  # the latest first
    shop = rows["wrShop"]
    assert shop.cells[0] == "实体店交流群" and shop.cells[2:] == ["1", "2", "3", "1 / 1"]
    assert rows["wrElse"].cells[0] == "wrElse"  # a group sopbot does not know: its id
    other = await add_member(app, "wm_quiet")
    quiet = (await console.client.get(f"/console/members/{other}")).text
    assert 'data-talk="silent"' in quiet
