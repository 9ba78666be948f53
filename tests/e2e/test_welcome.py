"""Friend adds through real encrypted callbacks: the member is recorded and attributed, the
welcome for their channel and slot goes out once on the fast lane, and the funnel counts it."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.engine.db import utcnow
from app.engine.outbox.models import DEAD, EXPIRED, OutboxMessage
from app.funnel import steps
from app.funnel.models import FunnelEvent
from app.members.models import Member, MemberHistory
from app.verify.links import links_for
from tests.conftest import CORP_ID, REPO, RunningApp, make_settings, serve_app, wait_until
from tests.fakes import payloads
from tests.fakes.wecom import FakeWeCom

WELCOME = "externalcontact/send_welcome_msg"


def add(user: str, code: str | None, state: str | None = None,
        change_type: str = "add_external_contact") -> str:
    return payloads.external_contact(change_type=change_type, corp_id=CORP_ID,
                                     external_user_id=user, state=state, welcome_code=code)


async def funnel_steps(app: RunningApp) -> Counter[str]:
    async with app.runtime.db.reader() as session:
        return Counter((await session.execute(select(FunnelEvent.step))).scalars())


async def funnel_row(app: RunningApp, step: str) -> FunnelEvent:
    async with app.runtime.db.reader() as session:
        return (await session.execute(select(FunnelEvent).where(FunnelEvent.step == step))
                ).scalar_one()


async def member(app: RunningApp, user: str) -> Member:
    async with app.runtime.db.reader() as session:
        return (await session.execute(select(Member).where(Member.external_userid == user))
                ).scalar_one()


async def settled(app: RunningApp, step: str, count: int = 1) -> None:
    """Until `step` was counted `count` times and the inbox worker is done too (the welcome is
    sent from the callback path, so it can be counted before the member is recorded)."""
    async def done() -> bool:
        return (await funnel_steps(app))[step] >= count
    await wait_until(done, 10)
    await app.idle()


async def test_a_friend_add_is_welcomed_once_for_its_channel_and_slot(db_url: str) -> None:
    settings = make_settings(db_url, agent_secret="agent-secret")
    async with serve_app(settings) as app:
        plaintext = add("wmORDER1", "WC-ORDER-1", state="app.order_success")
        for _ in range(3):  # WeCom's retries of the same callback welcome once
            assert (await app.post_callback(plaintext)).status_code == 200
        await settled(app, steps.WELCOME_SENT)
        await app.idle()
        [call] = app.wecom.calls_to(WELCOME)
        text = call.body["text"]["content"]
        assert text.startswith("您好，感谢您在 App 下单！")  # the app.order_success variant
        link = links_for(settings).url("wmORDER1").rsplit("/", 1)[0]
        assert link + "/" in text  # the member's own verification link
        token = text.split(link + "/", 1)[1].split()[0]
        assert links_for(settings).member_of(token) == "wmORDER1"
        row = await member(app, "wmORDER1")
        assert (row.channel, row.slot, row.staff_userid, row.status) == (
            "app", "order_success", payloads.STAFF, "added")
        counts = await funnel_steps(app)
        assert counts == {steps.FRIEND_ADDED: 1, steps.WELCOME_SENT: 1}
        sent = await funnel_row(app, steps.WELCOME_SENT)
        assert sent.member_id == row.id and sent.channel == "app" and sent.slot == "order_success"
        assert sent.latency_ms is not None and 0 <= sent.latency_ms < 10_000


async def test_the_default_welcome_carries_the_welfare_link(db_url: str) -> None:
    async with serve_app(make_settings(db_url, agent_secret="agent-secret")) as app:
        await app.post_callback(add("wmD2D", "WC-D2D", state="door_to_door"))
        await settled(app, steps.WELCOME_SENT)
        [call] = app.wecom.calls_to(WELCOME)
        assert call.body["text"]["content"].startswith("您好，欢迎加入我们的商家社群！")
        [attachment] = call.body["attachments"]
        assert attachment["msgtype"] == "link"
        assert attachment["link"]["title"] == "新人专享福利"


@pytest.mark.parametrize("state", ["douyin", "app.order_success"])
async def test_a_channel_variant_carries_the_default_welfare(db_url: str, state: str) -> None:
    """The variants in sop_flows/funnel.yaml declare no welfare: they inherit the default's."""
    async with serve_app(make_settings(db_url, agent_secret="agent-secret")) as app:
        await app.post_callback(add("wmVARIANT", "WC-VARIANT", state=state))
        await settled(app, steps.WELCOME_SENT)
        [call] = app.wecom.calls_to(WELCOME)
        assert not call.body["text"]["content"].startswith("您好，欢迎加入我们的商家社群！")
        [attachment] = call.body["attachments"]
        assert (attachment["msgtype"], attachment["link"]["title"]) == ("link", "新人专享福利")


async def test_a_variant_saying_welfare_none_sends_none(db_url: str, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(REPO / "sop_flows", flows)
    funnel = flows / "funnel.yaml"
    variant = "    - channel: douyin\n"
    assert variant in funnel.read_text(encoding="utf-8")
    funnel.write_text(funnel.read_text(encoding="utf-8").replace(
        variant, variant + "      welfare: none\n"), encoding="utf-8")
    settings = make_settings(db_url, agent_secret="agent-secret", flows_path=flows)
    async with serve_app(settings) as app:
        await app.post_callback(add("wmNONE", "WC-NONE", state="douyin"))
        await settled(app, steps.WELCOME_SENT)
        [call] = app.wecom.calls_to(WELCOME)
        assert call.body["text"]["content"].startswith("您好，感谢从抖音关注我们！")
        assert "attachments" not in call.body


async def test_an_unknown_or_empty_state_counts_under_the_default_channel(db_url: str) -> None:
    async with serve_app(make_settings(db_url, agent_secret="agent-secret")) as app:
        await app.post_callback(add("wmNOSTATE", "WC-N1"))
        await app.post_callback(add("wmGARBAGE", "WC-N2", state="%%nonsense.slot"))
        await app.post_callback(add("wmNOSLOT", "WC-N3", state="app.no_such_slot"))
        await settled(app, steps.WELCOME_SENT, 3)
        for user in ("wmNOSTATE", "wmGARBAGE", "wmNOSLOT"):
            row = await member(app, user)
            assert (row.channel, row.slot) == ("organic", None)
        assert (await member(app, "wmGARBAGE")).state == "%%nonsense.slot"  # kept for audits
        assert (await funnel_steps(app))[steps.DEFAULT_CHANNEL_USED] == 3


async def test_an_add_without_a_welcome_code_is_counted_not_an_error(db_url: str) -> None:
    async with serve_app(make_settings(db_url, agent_secret="agent-secret")) as app:
        await app.post_callback(add("wmCONSOLE", None, state="douyin"))
        await app.post_callback(add("wmHALF", None, state="door_to_door",
                                    change_type="add_half_external_contact"))
        await settled(app, steps.WELCOME_SKIPPED, 2)
        await app.idle()
        assert app.wecom.calls_to(WELCOME) == []
        counts = await funnel_steps(app)
        assert counts == {steps.FRIEND_ADDED: 2, steps.WELCOME_SKIPPED: 2}
        assert (await member(app, "wmCONSOLE")).channel == "douyin"


async def test_a_half_add_with_a_code_is_welcomed(db_url: str) -> None:
    async with serve_app(make_settings(db_url, agent_secret="agent-secret")) as app:
        await app.post_callback(add("wmHALF2", "WC-HALF", change_type="add_half_external_contact"))
        await settled(app, steps.WELCOME_SENT)
        assert len(app.wecom.calls_to(WELCOME)) == 1


async def test_41050_and_41051_are_final_and_counted_as_missed(db_url: str) -> None:
    fake = FakeWeCom()
    fake.script(WELCOME, 41050)
    fake.script(WELCOME, 41051)
    async with serve_app(make_settings(db_url, agent_secret="agent-secret"), wecom=fake) as app:
        await app.post_callback(add("wmLATE", "WC-LATE"))
        await app.post_callback(add("wmTAKEN", "WC-TAKEN"))
        await settled(app, steps.WELCOME_MISSED, 2)
        assert len(fake.calls_to(WELCOME)) == 2  # no retry of either
        rows = await outbox_rows(app)
        assert sorted((r.status, r.errcode) for r in rows) == [(DEAD, 41050), (DEAD, 41051)]
        assert (await funnel_steps(app))[steps.WELCOME_SENT] == 0


async def test_a_welcome_past_its_deadline_is_not_sent(db_url: str) -> None:
    settings = make_settings(db_url, agent_secret="agent-secret", outbox_sender=False)
    async with serve_app(settings) as app:
        await app.post_callback(add("wmSLOW", "WC-SLOW"))
        await app.idle()
        sender = app.runtime.sender
        skew = _later(19)
        sender.clock = skew  # the sender got to it 19 s after the callback
        await sender.drain(True)
        [row] = await outbox_rows(app)
        assert row.status == EXPIRED
        assert app.wecom.calls_to(WELCOME) == []
        assert (await funnel_steps(app))[steps.WELCOME_MISSED] == 1


async def test_a_second_add_by_another_staff_member_is_history_not_a_new_member(
        db_url: str) -> None:
    async with serve_app(make_settings(db_url, agent_secret="agent-secret")) as app:
        await app.post_callback(add("wmTWICE", "WC-T1", state="douyin"))
        await settled(app, steps.WELCOME_SENT)
        again = payloads.external_contact(corp_id=CORP_ID, external_user_id="wmTWICE",
                                          user_id="lisi", state="app.home_banner",
                                          welcome_code="WC-T2")
        await app.post_callback(again)
        await wait_until(lambda: _calls(app.wecom, 2), 10)
        await app.idle()
        row = await member(app, "wmTWICE")
        # The first add's attribution stands; the new staff member is recorded with history.
        assert (row.channel, row.staff_userid, row.welcome_code) == ("douyin", "lisi", "WC-T2")
        async with app.runtime.db.reader() as session:
            history = (await session.execute(
                select(MemberHistory.field, MemberHistory.old, MemberHistory.new)
                .where(MemberHistory.member_id == row.id).order_by(MemberHistory.id))).all()
        assert ("staff_userid", payloads.STAFF, "lisi") in history
        assert ("channel", None, "douyin") in history
        assert (await funnel_steps(app))[steps.FRIEND_ADDED] == 1  # one member, one step


async def outbox_rows(app: RunningApp) -> list[OutboxMessage]:
    async with app.runtime.db.reader() as session:
        return list((await session.execute(select(OutboxMessage))).scalars())


async def _calls(fake: FakeWeCom, count: int) -> bool:
    return len(fake.calls_to(WELCOME)) >= count


def _later(seconds: float) -> Callable[[], datetime]:
    return lambda: utcnow() + timedelta(seconds=seconds)


async def test_a_member_joining_a_group_is_marked_joined_and_counted_once(db_url: str) -> None:
    async with serve_app(make_settings(db_url, agent_secret="agent-secret")) as app:
        await app.post_callback(add("wmJOIN", "WC-J1", state="douyin"))
        await settled(app, steps.WELCOME_SENT)
        joined = payloads.external_chat(corp_id=CORP_ID, chat_id="wrGROUP1",
                                        mem_change_list=["wmJOIN", "staff01", "wmSTRANGER"])
        for _ in range(2):  # a retried callback changes nothing
            await app.post_callback(joined)
        again = payloads.external_chat(corp_id=CORP_ID, chat_id="wrGROUP2",
                                       mem_change_list=["wmJOIN"])
        await app.post_callback(again)  # joins a second group later
        await app.idle()
        row = await member(app, "wmJOIN")
        assert (row.status, row.group_chat_id) == ("joined", "wrGROUP2")
        assert (await funnel_steps(app))[steps.JOINED] == 1
        assert (await funnel_row(app, steps.JOINED)).detail == "wrGROUP1"
        quit_ = payloads.external_chat(corp_id=CORP_ID, chat_id="wrGROUP2",
                                       update_detail="del_member", mem_change_list=["wmJOIN"])
        await app.post_callback(quit_)
        await app.idle()
        # Leaving the group they were in last: still in the first one, so still joined.
        row = await member(app, "wmJOIN")
        assert (row.status, row.group_chat_id) == ("joined", "wrGROUP1")
        assert (await funnel_steps(app))[steps.LEFT_GROUP] == 1
