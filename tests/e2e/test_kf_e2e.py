"""微信客服 against the simulator, through real encrypted callbacks: a kf_msg_or_event makes the
kf reader pull with kf/sync_msg, each message reaches the router once, the cursor survives a
restart, a cursor or token WeCom rejects is recovered from, an entering customer is welcomed
through the event's code, and an undelivered message is recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from app.engine.inbox.models import InboxEvent
from app.kf.models import KfAccount, KfConversation, KfSendFailure
from tests.conftest import RunningApp, make_settings, rows_of, serve_app, wait_until
from tests.e2e.sim_server import AES_KEY, CORP_ID, SECRET, TOKEN, RunningSim, running_sim

KF = "wkSimKf0001"
SYNC = "kf/sync_msg"


@dataclass
class Kf:
    sim: RunningSim
    app: RunningApp

    async def rows(self, model: type) -> list[Any]:  # type: ignore[type-arg]
        return await rows_of(self.app.runtime.db, model)

    async def kf_kinds(self) -> list[str]:
        return [r.kind for r in await self.rows(InboxEvent) if r.kind.startswith("kf.")]

    async def until(self, probe: Any) -> None:
        await wait_until(probe, 10)
        await self.app.idle()

    async def write(self, customer: str, text: str) -> None:
        await self.sim.scenario("kf_message", open_kfid=KF, external_userid=customer, text=text)

    async def syncs(self) -> list[dict[str, Any]]:
        answer = await self.sim.client.get("/sim/requests", params={"path": SYNC})
        return list(answer.json()["requests"])


def settings_for(db_url: str, sim: RunningSim) -> Any:
    return make_settings(db_url, corp_id=CORP_ID, callback_token=TOKEN, callback_aes_key=AES_KEY,
                         agent_secret=SECRET, api_base=sim.base_url, outbox_retry_base_s=0.05)


@asynccontextmanager
async def kf_app(db_url: str, sim: RunningSim) -> AsyncIterator[Kf]:
    async with serve_app(settings_for(db_url, sim), simulator=True) as app:
        sim.sim.callbacks.bot_url = f"{app.base_url}/wecom/callback"
        yield Kf(sim, app)


async def test_messages_are_pulled_once_each_and_reading_resumes_after_a_restart(
        db_url: str) -> None:
    async with running_sim(SOPBOT_SIM_KF_ACCOUNTS=KF) as sim:
        async with kf_app(db_url, sim) as kf:
            # WeCom answers an empty page with has_more=1 now and then: reading goes on.
            await sim.client.post("/sim/faults", json={"path": SYNC, "empty_page": True,
                                                       "count": 1})
            await kf.write("wmKfA", "你好")
            await kf.write("wmKfB", "在吗")

            async def both() -> bool:
                return len(await kf.kf_kinds()) == 2
            await kf.until(both)
            [account] = await kf.rows(KfAccount)
            assert account.cursor and account.news == account.pulled
            # Each message opened its answer window and got one answer (no rule knew it).
            windows = {c.external_userid: c.answers for c in await kf.rows(KfConversation)}
            assert windows == {"wmKfA": 1, "wmKfB": 1}
            assert all(r["body"].get("token") for r in await kf.syncs())  # the callbacks' token
        async with kf_app(db_url, sim) as kf:  # a deploy: the cursor was kept
            before = len(await kf.syncs())
            await kf.write("wmKfA", "还有一个问题")

            async def third() -> bool:
                return len(await kf.kf_kinds()) == 3
            await kf.until(third)
            later = (await kf.syncs())[before:]
            assert later[0]["body"]["cursor"] == account.cursor  # on from where it stopped
            assert await kf.kf_kinds() == ["kf.text"] * 3
            assert [r.status for r in await kf.rows(InboxEvent)
                    if r.kind.startswith("kf.")] == ["done"] * 3


async def test_a_rejected_cursor_reads_again_from_the_start_without_doubling_anything(
        db_url: str) -> None:
    async with running_sim(SOPBOT_SIM_KF_ACCOUNTS=KF) as sim, kf_app(db_url, sim) as kf:
        await kf.write("wmKfC", "第一条")

        async def first() -> bool:
            return len(await kf.kf_kinds()) == 1
        await kf.until(first)
        async with kf.app.runtime.db.unit_of_work() as session:
            await session.execute(update(KfAccount).values(cursor="not-a-cursor"))
        # The token of the next callback has expired too by the time it is used.
        sim.sim.world.kf_tokens.clear()
        await kf.write("wmKfC", "第二条")

        async def second() -> bool:
            return len(await kf.kf_kinds()) == 2
        await kf.until(second)
        bodies = [r["body"] for r in await kf.syncs()]
        assert any(b.get("cursor") == "not-a-cursor" for b in bodies)
        assert "cursor" not in bodies[-1]  # read again from the start: both came back
        assert len(await kf.kf_kinds()) == 2  # the first one was not stored twice
        [account] = await kf.rows(KfAccount)
        assert account.cursor != "not-a-cursor" and account.failures == 0


async def test_an_entering_customer_is_welcomed_through_the_code_and_failures_are_recorded(
        db_url: str) -> None:
    async with running_sim(SOPBOT_SIM_KF_ACCOUNTS=KF) as sim, kf_app(db_url, sim) as kf:
        await sim.scenario("kf_enter_session", open_kfid=KF, external_userid="wmKfD",
                           scene="app")

        async def welcomed() -> bool:
            return bool(sim.sim.world.kf_sent)
        await kf.until(welcomed)
        [sent] = sim.sim.world.kf_sent
        assert sent["via"] == "send_msg_on_event/welcome" and sent["delivered"]
        # Queued by the reader with the page that brought the event, before the inbox worker
        # handled it: the welcome code lives only 20 s.
        from app.engine.outbox.models import OutboxMessage
        [welcome] = [r for r in await kf.rows(OutboxMessage) if r.kind == "kf_welcome"]
        [entered] = [r for r in await kf.rows(InboxEvent) if r.kind == "kf.event.enter_session"]
        assert entered.processed_at is not None and welcome.created_at < entered.processed_at
        assert sent["text"]["content"].startswith("您好，欢迎从 App 来到商家服务中心")
        # A message sent outside the 48 h window is accepted but not delivered: WeCom says so
        # with a msg_send_fail event, which is recorded.
        token = await sim.token()
        answer = await sim.call("kf/send_msg", {"touser": "wmKfD", "open_kfid": KF,
                                                "msgtype": "text", "text": {"content": "hi"}},
                                token=token)
        assert answer["errcode"] == 0

        async def recorded() -> bool:
            return bool(await kf.rows(KfSendFailure))
        await kf.until(recorded)
        [failure] = await kf.rows(KfSendFailure)
        assert (failure.external_userid, failure.fail_msgid, failure.fail_type) == (
            "wmKfD", answer["msgid"], 4)


def _sent_to(sim: RunningSim, customer: str) -> list[dict[str, Any]]:
    return [s for s in sim.sim.world.kf_sent if s["touser"] == customer]


async def test_questions_are_answered_per_segment_and_misses_hand_the_customer_over(
        db_url: str) -> None:
    from app.engine.db import utcnow
    from app.kf.models import KeywordHit, UnansweredQuestion
    from app.members import service as members

    async with running_sim(SOPBOT_SIM_KF_ACCOUNTS=KF) as sim, kf_app(db_url, sim) as kf:
        async with kf.app.runtime.db.unit_of_work() as session:
            await members.create(session, utcnow(), "test", external_userid="wmKfN",
                                 staff_userid="zhangsan", channel="organic", segment="shop_north")
        await kf.write("wmKfN", "请问什么时候发货？")
        await kf.write("wmKfX", "发货要几天")

        async def answered() -> bool:
            return bool(_sent_to(sim, "wmKfN")) and bool(_sent_to(sim, "wmKfX"))
        await kf.until(answered)
        assert _sent_to(sim, "wmKfN")[0]["text"]["content"].startswith("北方仓订单")
        assert _sent_to(sim, "wmKfX")[0]["text"]["content"].startswith("订单一般在付款后 48 小时")
        assert all(s["delivered"] and s["via"] == "send_msg" for s in sim.sim.world.kf_sent)
        # Two questions in a row that no rule knows: the second hands the customer over.
        for n, question in enumerate(["你们老板是谁", "今天天气怎么样"], start=2):
            await kf.write("wmKfX", question)

            async def handled(n: int = n) -> bool:
                return len([r for r in await kf.rows(InboxEvent) if r.kind == "kf.text"
                            and r.status == "done"]) == n + 1
            await kf.until(handled)
        first_miss = _sent_to(sim, "wmKfX")[1]
        assert first_miss["text"]["content"].startswith("抱歉，我暂时没有理解")

        async def queued() -> bool:
            return any(s["via"] == "send_msg_on_event/queue" for s in _sent_to(sim, "wmKfX"))
        await kf.until(queued)
        assert sim.sim.world.kf_sessions[(KF, "wmKfX")].state == 2  # waiting for a person
        assert _sent_to(sim, "wmKfX")[-1]["text"]["content"].startswith("正在为您转接人工客服")
        # While a person has the conversation sopbot says nothing.
        before = len(_sent_to(sim, "wmKfX"))
        await kf.write("wmKfX", "发货")

        async def seen() -> bool:
            return len([r for r in await kf.rows(InboxEvent) if r.kind == "kf.text"]) == 5
        await kf.until(seen)
        assert len(_sent_to(sim, "wmKfX")) == before
        assert [(h.rule_id, h.segment) for h in await kf.rows(KeywordHit)] == [
            ("shipping", "shop_north"), ("shipping", None)]
        assert [q.text for q in await kf.rows(UnansweredQuestion)] == [
            "你们老板是谁", "今天天气怎么样"]


async def test_asking_for_a_person_hands_over_at_once(db_url: str) -> None:
    async with running_sim(SOPBOT_SIM_KF_ACCOUNTS=KF) as sim, kf_app(db_url, sim) as kf:
        await kf.write("wmKfP", "人工")

        async def queued() -> bool:
            return any(s["via"] == "send_msg_on_event/queue" for s in _sent_to(sim, "wmKfP"))
        await kf.until(queued)
        assert [s["via"] for s in _sent_to(sim, "wmKfP")] == ["send_msg_on_event/queue"]
        [conversation] = await kf.rows(KfConversation)
        assert conversation.handed_off_at is not None


async def test_a_menu_click_is_answered_by_the_rule_it_names(db_url: str) -> None:
    async with running_sim(SOPBOT_SIM_KF_ACCOUNTS=KF) as sim, kf_app(db_url, sim) as kf:
        await kf.write("wmKfM", "进货价是多少")

        async def menu() -> bool:
            return bool(_sent_to(sim, "wmKfM"))
        await kf.until(menu)
        assert _sent_to(sim, "wmKfM")[0]["msgtype"] == "msgmenu"
        await sim.scenario("kf_message", open_kfid=KF, external_userid="wmKfM",
                           text="食品饮料", menu_id="price_beauty")  # the id decides

        async def clicked() -> bool:
            return len(_sent_to(sim, "wmKfM")) == 2
        await kf.until(clicked)
        assert _sent_to(sim, "wmKfM")[1]["text"]["content"].startswith("美妆个护类进货价")


async def test_a_hand_off_wecom_refuses_leaves_sopbot_answering(db_url: str) -> None:
    async with running_sim(SOPBOT_SIM_KF_ACCOUNTS=KF) as sim, kf_app(db_url, sim) as kf:
        await sim.client.post("/sim/faults", json={"path": "kf/service_state/trans",
                                                   "errcode": 95016, "count": 1})
        await kf.write("wmKfR", "人工")

        async def refused() -> bool:
            answer = await sim.client.get("/sim/requests",
                                          params={"path": "kf/service_state/trans"})
            return bool(answer.json()["requests"])
        await kf.until(refused)
        [conversation] = await kf.rows(KfConversation)
        assert conversation.handed_off_at is None
        await kf.write("wmKfR", "什么时候发货")

        async def answered() -> bool:
            return bool(_sent_to(sim, "wmKfR"))
        await kf.until(answered)
        assert _sent_to(sim, "wmKfR")[0]["text"]["content"].startswith("订单一般在付款后")


async def test_pages_that_bring_nothing_new_end_the_read_as_failed(db_url: str) -> None:
    async with running_sim(SOPBOT_SIM_KF_ACCOUNTS=KF) as sim, kf_app(db_url, sim) as kf:
        await sim.client.post("/sim/faults", json={"path": SYNC, "empty_page": True,
                                                   "count": 4})
        await kf.write("wmKfE", "你好")

        async def failed() -> bool:
            accounts = await kf.rows(KfAccount)
            return bool(accounts) and accounts[0].failures == 1
        await kf.until(failed)
        [account] = await kf.rows(KfAccount)
        assert "brought nothing new" in (account.last_error or "")
        assert account.news > account.pulled  # read again after the backoff
        assert len(await kf.syncs()) == 4
