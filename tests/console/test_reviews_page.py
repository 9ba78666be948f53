"""/console/reviews: the queue with its directory matches and photos, decisions one by one and
in bulk, and decisions that come too late (twice, or from a stale page)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.outbox.models import OutboxMessage
from app.faces.console.flash import FLASH_COOKIE, FLASH_SALT
from app.funnel import steps
from app.members.models import Member, MemberHistory
from app.verify import service
from app.verify.models import Verification
from tests.conftest import OPERATOR, SECRET_KEY
from tests.console.conftest import OTHER, OTHER_PASSWORD, Console, logged_in, new_client
from tests.console.people import (  # noqa: F401 (console_app: the fixture with a photo dir)
    JPEG,
    PNG,
    add_directory,
    add_member,
    console_app,
    decide,
    fetch,
    listed,
    pending_review,
    steps_of,
    submit,
)

REASON = "照片看不清，请重新拍摄门头或货架"  # one of sop_flows/verify.yaml's review_reasons


async def review_of(console: Console, review_id: int) -> Verification:
    [row] = await fetch(console.app, Verification, id=review_id)
    return row


async def member_of(console: Console, review_id: int) -> Member:
    row = await review_of(console, review_id)
    [member] = await fetch(console.app, Member, id=row.member_id)
    return member


async def queue_page(console: Console, **params: str) -> str:
    page = await console.client.get("/console/reviews", params=params)
    assert page.status_code == 200, page.text
    return page.text


async def test_the_queue_lists_pending_reviews_oldest_first_with_their_match(
        console: Console) -> None:
    app = console.app
    await add_directory(app, "P-1001", "13900139000", "张三五金店")
    first = await pending_review(app, "wm_first", phone="13900139000",
                                 at=datetime(2026, 11, 10, 1, 0, tzinfo=UTC))
    second = await pending_review(app, "wm_second", phone="13700137000", region="北京",
                                  identity_type="online_shop", photos=(JPEG, PNG))
    late = await pending_review(app, "wm_late", phone="13600136000")
    await add_directory(app, "P-2002", "13600136000", None)  # imported after the submission
    done = await pending_review(app, "wm_done", phone="13500135000")
    await decide(console, [done], "approve")

    html = await queue_page(console)
    assert listed(html) == [first, second, late]
    assert 'data-pending="3"' in html
    assert html.count('name="note" maxlength="500"') == 4  # the bulk form, and each review's
    assert 'data-match="P-1001"' in html and "张三五金店" in html
    assert 'data-match="P-2002"' in html and "目录导入后才找到" in html
    assert "未匹配（不在平台用户目录中）" in html  # wm_second
    assert "139****9000" in html and "13900139000" not in html  # masked in the list
    assert "2026-11-10 09:00 提交" in html  # Asia/Shanghai
    assert "实体店" in html and "网店" in html and "抖音" in html and "北京" in html
    assert html.count(f"/console/reviews/{second}/photos/") == 4  # 2 photos, link + image
    # The detail shows the whole number, for checking it against the platform's records.
    detail = await console.client.get(f"/console/reviews/{first}")
    assert detail.status_code == 200 and "13900139000" in detail.text
    assert (await console.client.get("/console/reviews/9999")).status_code == 404
    # An id no table can hold is refused before the database sees it (not a 500).
    too_big = f"/console/reviews/{2**63}"
    assert (await console.client.get(too_big)).status_code == 422
    assert (await console.client.get(f"{too_big}/photos/0")).status_code == 422


async def test_photos_are_served_to_operators_only(console: Console) -> None:
    review = await pending_review(console.app, "wm_photos", photos=(JPEG, PNG))
    client = console.client
    first = await client.get(f"/console/reviews/{review}/photos/0")
    second = await client.get(f"/console/reviews/{review}/photos/1")
    assert (first.status_code, first.content, first.headers["content-type"]) == (
        200, JPEG, "image/jpeg")
    assert first.headers["cache-control"] == "no-store"
    assert (second.status_code, second.headers["content-type"]) == (200, "image/png")
    for path in (f"/console/reviews/{review}/photos/2", f"/console/reviews/{review}/photos/-1",
                 f"/console/reviews/{review + 1}/photos/0"):
        assert (await client.get(path)).status_code == 404, path
    # A file gone from the disk is a missing photo, not a server error.
    [row] = await fetch(console.app, Verification, id=review)
    (console.app.runtime.settings.photo_dir / row.photos[1]).unlink()
    assert (await client.get(f"/console/reviews/{review}/photos/1")).status_code == 404
    async with new_client(console.app) as stranger:
        refused = await stranger.get(f"/console/reviews/{review}/photos/0")
    assert refused.status_code == 303 and JPEG not in refused.content


async def test_approving_routes_the_member(console: Console) -> None:
    review = await pending_review(console.app, "wm_shop")
    await decide(console, [review], "approve")
    row, member = await review_of(console, review), await member_of(console, review)
    assert (row.status, row.reviewer, row.reason) == ("approved", OPERATOR, None)
    assert (member.status, member.segment) == ("routed", "shop_south")  # a shop in 广东
    assert await steps_of(console.app, member.id) == [
        steps.SUBMITTED, steps.APPROVED, steps.ROUTED]
    history = {(h.field, h.new, h.source)
               for h in await fetch(console.app, MemberHistory, member_id=member.id)}
    assert ("status", "approved", f"review:{OPERATOR}") in history
    assert ("segment", "shop_south", "routing") in history
    [notice] = await fetch(console.app, OutboxMessage, idempotency_key=f"routed:{member.id}")
    assert notice.kind == "staff_notice"

    html = await queue_page(console)
    assert "已通过 1 条" in html and "分到「实体店·南方群」" in html
    assert listed(html) == []
    assert "已通过 1 条" not in await queue_page(console)  # the notice shows once


async def test_rejecting_stores_the_reason(console: Console) -> None:
    app = console.app
    picked = await pending_review(app, "wm_picked")
    written = await pending_review(app, "wm_written")
    await decide(console, [picked], "reject", reason=REASON, note="门头被招牌挡住")
    await decide(console, [written], "reject", note="同一店铺已认证过")
    assert (await review_of(console, picked)).reason == f"{REASON}；门头被招牌挡住"
    assert (await review_of(console, written)).reason == "同一店铺已认证过"
    member = await member_of(console, picked)
    assert member.status == "rejected" and member.segment is None
    assert await steps_of(app, member.id) == [steps.SUBMITTED, steps.REJECTED]
    assert await fetch(app, OutboxMessage) == []
    html = await queue_page(console)
    assert "已拒绝 1 条" in html and "同一店铺已认证过" in html


async def test_a_rejection_needs_a_known_reason_or_a_note(console: Console) -> None:
    review = await pending_review(console.app, "wm_reasonless")
    for fields, message in (({}, "拒绝时请选择或填写原因"),
                            ({"note": "   "}, "拒绝时请选择或填写原因"),
                            ({"reason": "not one of the list"}, "所选原因不在列表中"),
                            ({"note": "长" * 501}, "原因最多 500 个字")):
        await decide(console, [review], "reject", **fields)
        assert message in await queue_page(console)
    await decide(console, [], "approve")
    assert "请先勾选要处理的认证" in await queue_page(console)
    await decide(console, [review], "delete")
    assert "未知的操作" in await queue_page(console)
    assert (await review_of(console, review)).status == "pending"
    assert await steps_of(console.app, (await member_of(console, review)).id) == [
        steps.SUBMITTED]


async def test_bulk_decisions_report_each_review(console: Console) -> None:
    app = console.app
    one = await pending_review(app, "wm_one", phone="13800000001")
    two = await pending_review(app, "wm_two", phone="13800000002", region="北京")
    three = await pending_review(app, "wm_three", phone="13800000003")
    await decide(console, [one, two, one], "approve")  # a box sent twice decides once
    html = await queue_page(console)
    assert "已通过 2 条" in html and "分到「实体店·北方群」" in html
    assert listed(html) == [three]
    # Rejecting a batch that holds one already approved: the others still go through.
    await decide(console, [three, one, 9999, 2**63], "reject", reason=REASON)
    html = await queue_page(console)
    assert [(await review_of(console, r)).status for r in (one, two, three)] == [
        "approved", "approved", "rejected"]
    assert "已拒绝 1 条" in html and f"#{three} wm_three 138****0003：已拒绝" in html
    assert "1 条未作更改" in html and f"#{one}：已由您（{OPERATOR}）于" in html
    assert f"找不到这些认证：#9999、#{2**63}" in html
    assert await steps_of(app, (await member_of(console, one)).id) == [
        steps.SUBMITTED, steps.APPROVED, steps.ROUTED]


async def test_a_bulk_decision_goes_on_past_an_unexpected_error(
        console: Console, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    app = console.app
    one, broken, three = [await pending_review(app, f"wm_{n}", phone=f"1380000002{n}")
                          for n in range(3)]
    decide_one = service.decide

    async def flaky(session: AsyncSession, review_id: int, *args: Any) -> Verification:
        if review_id == broken:
            raise OperationalError("UPDATE verification", {}, Exception("connection reset"))
        return await decide_one(session, review_id, *args)
    monkeypatch.setattr(service, "decide", flaky)
    await decide(console, [one, broken, three], "approve")
    assert [(await review_of(console, r)).status for r in (one, broken, three)] == [
        "approved", "pending", "approved"]
    html = await queue_page(console)
    assert "已通过 2 条" in html and "1 条处理失败（系统出错，已记录日志），" in html
    assert f"请稍后刷新查看并重试：#{broken}" in html
    assert listed(html) == [broken]
    failed = [json.loads(line) for line in capsys.readouterr().err.splitlines()
              if '"console_review_decide_failed"' in line]
    assert [(f["verification_id"], "connection reset" in f["exception"]) for f in failed] == [
        (broken, True)]


async def test_approving_the_same_member_twice_changes_nothing(console: Console) -> None:
    app = console.app
    review = await pending_review(app, "wm_twice")
    member_id = (await member_of(console, review)).id
    await decide(console, [review], "approve")
    first_history = await fetch(app, MemberHistory, member_id=member_id)
    decided_at = (await review_of(console, review)).decided_at
    await queue_page(console)  # the first notice is read

    await decide(console, [review], "approve")
    row = await review_of(console, review)
    assert (row.status, row.reviewer, row.decided_at) == ("approved", OPERATOR, decided_at)
    assert await steps_of(app, member_id) == [steps.SUBMITTED, steps.APPROVED, steps.ROUTED]
    assert len(await fetch(app, MemberHistory, member_id=member_id)) == len(first_history)
    assert len(await fetch(app, OutboxMessage, kind="staff_notice")) == 1
    html = await queue_page(console)
    assert 'data-kind="ok"' not in html and 'data-kind="warn"' in html  # no success notice
    assert f"#{review}：已由您（{OPERATOR}）于" in html and "通过，本次的“通过”未生效" in html


async def test_a_stale_page_cannot_overturn_another_reviewer(console: Console) -> None:
    app = console.app
    review = await pending_review(app, "wm_stale")
    member_id = (await member_of(console, review)).id
    stale = await queue_page(console)  # OPERATOR's page, showing the review pending
    assert listed(stale) == [review]
    async with new_client(app) as browser:
        bob = await logged_in(app, browser, OTHER, OTHER_PASSWORD)
        await decide(bob, [review], "reject", reason=REASON)
    # OPERATOR acts from the page loaded before bob's decision.
    await decide(console, [review], "approve")
    row = await review_of(console, review)
    assert (row.status, row.reviewer, row.reason) == ("rejected", OTHER, REASON)
    member = await fetch(app, Member, id=member_id)
    assert (member[0].status, member[0].segment) == ("rejected", None)
    assert await steps_of(app, member_id) == [steps.SUBMITTED, steps.REJECTED]
    assert await fetch(app, OutboxMessage) == []
    html = await queue_page(console)
    assert f"#{review}：已由 {OTHER} 于" in html
    assert f"拒绝（原因：{REASON}），本次的“通过”未生效" in html


async def test_a_decision_without_the_csrf_token_is_refused(console: Console) -> None:
    review = await pending_review(console.app, "wm_csrf")
    for data in ({"ids": str(review), "action": "approve"},
                 {"ids": str(review), "action": "approve", "csrf_token": "forged"}):
        refused = await console.client.post("/console/reviews/decide", data=data)
        assert refused.status_code == 403
    assert (await review_of(console, review)).status == "pending"
    assert await steps_of(console.app, (await member_of(console, review)).id) == [
        steps.SUBMITTED]


async def test_recent_decisions_show_reviewer_and_reason(console: Console) -> None:
    app = console.app
    approved = await pending_review(app, "wm_yes", phone="13800000011")
    rejected = await pending_review(app, "wm_no", phone="13800000012")
    await decide(console, [approved], "approve")
    await decide(console, [rejected], "reject", reason=REASON)
    yes = await queue_page(console, status="approved")
    no = await queue_page(console, status="rejected")
    assert listed(yes) == [approved] and f"您（{OPERATOR}）" in yes
    assert listed(no) == [rejected] and REASON in no and "138****0012" in no
    assert "13800000012" not in no
    bad = await console.client.get("/console/reviews", params={"status": "all"})
    assert bad.status_code == 400 and "未知的筛选条件" in bad.text


async def test_a_notice_shows_only_to_the_operator_it_was_left_for(console: Console) -> None:
    review = await pending_review(console.app, "wm_flash")
    await decide(console, [review], "approve")
    signer = URLSafeTimedSerializer(SECRET_KEY, salt=FLASH_SALT)
    refused = {"error": "no_ids"}
    for value in ("forged.value", signer.dumps({"u": OTHER, "page": "reviews", "p": refused}),
                  # Another page's notice (the cookie is the console's): not the queue's to word.
                  signer.dumps({"u": OPERATOR, "page": "outbox", "p": refused})):
        console.client.cookies.set(FLASH_COOKIE, value, path="/console")
        html = await queue_page(console)
        assert "people-flash" not in html and "请先勾选" not in html
    mine = signer.dumps({"u": OPERATOR, "page": "reviews", "p": refused})
    console.client.cookies.set(FLASH_COOKIE, mine, path="/console")
    assert "请先勾选" in await queue_page(console)  # the same notice, left for this operator


async def test_a_phone_another_member_holds_is_flagged_and_approved_only_by_moving_it(
        console: Console) -> None:
    """The one-to-one record: the queue names the member holding the phone; "approve" is
    refused with a notice; "move" approves, unlinking the holder (its record says so)."""
    app = console.app
    owner_review = await pending_review(app, "wm_owner", phone="13900139000")
    await decide(console, [owner_review], "approve")
    owner = await member_of(console, owner_review)
    assert owner.link_state == "linked"
    claim = await pending_review(app, "wm_claimant", phone="13900139000")
    html = await queue_page(console)
    assert f"提交时手机号已绑定会员 #{owner.id}：仍绑定时不能直接通过" in html
    assert f'data-holder="{owner.id}"' in html
    assert 'value="move"' in html and "转移绑定并通过" in html
    await decide(console, [claim], "approve")
    assert "1 条未通过：手机号或平台用户 ID 已绑定其他会员" in await queue_page(console)
    assert (await review_of(console, claim)).status == "pending"
    detail = await console.client.get(f"/console/reviews/{claim}")
    assert f"手机号已绑定会员 #{owner.id}" in detail.text and 'value="move"' in detail.text
    await decide(console, [claim], "move")
    claimant = await member_of(console, claim)
    [owner] = await fetch(app, Member, id=owner.id)
    assert ((await review_of(console, claim)).status, claimant.link_state) == (
        "approved", "linked")
    assert (owner.link_state, owner.flag, owner.phone) == (None, "link_moved", "13900139000")
    record = (await console.client.get(f"/console/members/{owner.id}")).text
    assert "绑定已转移给其他会员" in record
    assert re.search(rf"<td>解除绑定</td>\s*<td class=\"mb-old\">—</td>\s*"
                     rf"<td>转移给会员 #{claimant.id}</td>\s*<td>审核：", record)
    assert "已绑定（手机号与平台用户 ID 归此会员）" in (
        await console.client.get(f"/console/members/{claimant.id}")).text


async def test_the_claimants_record_names_the_member_holding_its_phone(console: Console) -> None:
    app = console.app
    owner_review = await pending_review(app, "wm_owner", phone="13900139000")
    await decide(console, [owner_review], "approve")
    owner = await member_of(console, owner_review)
    claimant = await member_of(console, await pending_review(app, "wm_claimant",
                                                            phone="13900139000"))
    record = (await console.client.get(f"/console/members/{claimant.id}")).text
    assert "手机号或平台用户 ID 同时绑定在其他会员上" in record
    assert f'data-holder="{owner.id}"' in record
    assert f"手机号已绑定会员 #{owner.id}" in record  # the submission's note
