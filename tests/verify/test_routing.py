"""Approval routes the member: the segment its rules give, the routed step, and an app message
to its staff member (through the outbox, phone masked), all in the approval's unit of work."""

from __future__ import annotations

from sqlalchemy import select

from app.engine.outbox.models import OutboxMessage
from app.funnel import steps
from app.routing.models import CorpTag
from app.routing.tags import sync_tags
from app.verify.links import links_for
from tests.conftest import wait_until
from tests.verify.conftest import AUTH, VerifyApp

MESSAGE = "message/send"
MARK_TAG = "externalcontact/mark_tag"


async def _approve(verify_app: VerifyApp, external_userid: str, **form: str) -> int:
    member, path = await verify_app.member(external_userid)
    assert (await verify_app.submit(path, **form)).status_code == 200
    [row] = [r for r in await verify_app.verifications() if r.member_id == member.id]
    response = await verify_app.client.post(f"/api/reviews/{row.id}/approve",
                                            json={"reviewer": "alice"}, headers=AUTH)
    assert response.status_code == 200
    return member.id


async def test_an_approved_member_is_routed_and_its_staff_member_told(
        verify_app: VerifyApp) -> None:
    member_id = await _approve(verify_app, "wm_north", region="北京", phone="13800138000")
    member = await verify_app.fresh_member(member_id)
    assert (member.status, member.segment) == ("routed", "shop_north")
    assert await verify_app.steps() == [steps.SUBMITTED, steps.APPROVED, steps.ROUTED]
    fake = verify_app.running.wecom

    async def told() -> bool:
        return bool(fake.calls_to(MESSAGE))
    await wait_until(told, 10)
    [call] = fake.calls_to(MESSAGE)
    assert (call.body["touser"], call.body["msgtype"]) == ("lisi", "text")
    text = call.body["text"]["content"]
    assert "实体店·北方群" in text and "北京" in text and "抖音" in text and "wm_north" in text
    assert "138****8000" in text and "13800138000" not in text  # masked even for staff
    # No group pool yet (`sopbot groups sync` not run): the text says so instead of a group.
    assert "当前入群：暂无可用群" in text
    token = links_for(verify_app.running.runtime.settings).token("wm_north")
    page = (await verify_app.client.get(f"/verify/{token}")).text
    assert "认证通过" in page and "<img" not in page


async def test_an_online_shop_from_douyin_gets_its_own_segment(verify_app: VerifyApp) -> None:
    member_id = await _approve(verify_app, "wm_online", identity_type="online_shop")
    assert (await verify_app.fresh_member(member_id)).segment == "online_douyin"


async def test_a_consumer_is_never_routed(verify_app: VerifyApp) -> None:
    member, path = await verify_app.member("wm_consumer")
    await verify_app.submit(path, identity_type="consumer")
    stored = await verify_app.fresh_member(member.id)
    assert (stored.status, stored.segment) == ("rejected", None)
    assert steps.ROUTED not in await verify_app.steps()
    assert verify_app.running.wecom.calls_to(MESSAGE) == []


async def test_a_routed_member_gets_its_corp_tags(verify_app: VerifyApp) -> None:
    runtime = verify_app.running.runtime
    await sync_tags(runtime.db, runtime.wecom, runtime.flows)
    member_id = await _approve(verify_app, "wm_tagged", region="上海")
    fake = verify_app.running.wecom

    async def tagged() -> bool:
        return bool(fake.calls_to(MARK_TAG))
    await wait_until(tagged, 10)
    [call] = fake.calls_to(MARK_TAG)
    assert (call.body["userid"], call.body["external_userid"]) == ("lisi", "wm_tagged")
    async with runtime.db.reader() as session:
        names = {(t.dimension, t.value) for t in (await session.execute(
            select(CorpTag).where(CorpTag.tag_id.in_(call.body["add_tag"])))).scalars()}
    assert names == {("identity", "physical_shop"), ("channel", "douyin"), ("region", "上海")}
    assert (await verify_app.fresh_member(member_id)).segment == "shop_south"


async def test_without_synced_tags_routing_still_happens(verify_app: VerifyApp) -> None:
    member_id = await _approve(verify_app, "wm_untagged")
    assert (await verify_app.fresh_member(member_id)).status == "routed"
    async with verify_app.running.runtime.db.reader() as session:
        kinds = set((await session.execute(select(OutboxMessage.kind))).scalars())
    assert kinds == {"staff_notice"}  # the staff message, and no mark_tag queued
