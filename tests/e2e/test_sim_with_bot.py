"""The simulator as a real server and sopbot as a real server: a friend add in the simulator
becomes an encrypted callback, the handler queues the welcome, and the outbox delivers it
through the real client, surviving the simulator's faults."""

from __future__ import annotations

from datetime import timedelta

from app.engine.bot.context import Ctx
from app.engine.bot.router import Router
from app.engine.outbox.models import FAST
from app.engine.wecom.api import SendWelcomeMsg, Text
from app.engine.wecom.events import ExternalContactAdded
from tests.conftest import make_settings, serve_app, wait_until
from tests.e2e.sim_server import AES_KEY, CORP_ID, SECRET, TOKEN, RunningSim, running_sim

WELCOME = "externalcontact/send_welcome_msg"


async def queue_welcome(event: ExternalContactAdded, ctx: Ctx) -> None:
    """Test rule: welcome every new friend with the channel in the text."""
    await ctx.queue(f"welcome:{event.welcome_code}", SendWelcomeMsg(
        welcome_code=event.welcome_code or "", text=Text(content=f"欢迎！来自{event.state}")),
        kind="welcome", priority=FAST, deadline=ctx.now + timedelta(seconds=18))


def welcome_router() -> Router:
    router = Router("test", partial=True)  # its own handlers: no behaviour's intake
    router.add(ExternalContactAdded, queue_welcome)
    return router


async def welcomes(sim: RunningSim) -> list[dict]:  # type: ignore[type-arg]
    answer = await sim.client.get("/sim/requests", params={"path": WELCOME})
    return answer.json()["requests"]


async def test_a_friend_add_in_the_simulator_is_welcomed_once(db_url: str) -> None:
    async with running_sim() as sim:
        settings = make_settings(db_url, corp_id=CORP_ID, callback_token=TOKEN,
                                 callback_aes_key=AES_KEY, agent_secret=SECRET,
                                 api_base=sim.base_url, outbox_retry_base_s=0.05)
        async with serve_app(settings, router=welcome_router(), simulator=True) as app:
            sim.sim.callbacks.bot_url = f"{app.base_url}/wecom/callback"
            # The first welcome meets "system busy", then the token is pulled away.
            await sim.client.post("/sim/faults", json={"path": WELCOME, "errcode": -1,
                                                       "count": 1})
            added = await sim.scenario("friend_add", userid="staff01", state="douyin")
            assert added["callbacks"][0]["outcome"] == "delivered", added

            async def answered() -> bool:
                return any(r["errcode"] == 0 for r in await welcomes(sim))

            await wait_until(answered, 10)
            await sim.client.post("/sim/tokens/invalidate", json={"errcode": 42001})
            await sim.scenario("friend_add", userid="staff01", state="app_store")
            await wait_until(lambda: _count_ok(sim, 2), 10)
            await app.idle()
            sent = await welcomes(sim)
            assert [r["errcode"] for r in sent] == [-1, 0, 42001, 0]
            assert [r["body"]["text"]["content"] for r in sent if r["errcode"] == 0] == [
                "欢迎！来自douyin", "欢迎！来自app_store"]
            # Each welcome code went out once successfully: the simulator would answer 41051
            # to a second use, and no such answer was recorded.
            codes = [r["body"]["welcome_code"] for r in sent if r["errcode"] == 0]
            assert len(set(codes)) == 2


async def _count_ok(sim: RunningSim, wanted: int) -> bool:
    return sum(1 for r in await welcomes(sim) if r["errcode"] == 0) >= wanted
