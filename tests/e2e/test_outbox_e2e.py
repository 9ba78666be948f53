"""From a callback to WeCom: a handler queues a welcome, the sender delivers it once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.engine.bot.context import Ctx
from app.engine.bot.router import Router
from app.engine.outbox.models import FAST, OutboxMessage
from app.engine.wecom.api import SendWelcomeMsg, Text
from app.engine.wecom.events import ExternalContactAdded
from tests.conftest import CORP_ID, make_settings, serve_app, wait_until
from tests.fakes import payloads

WELCOME = "externalcontact/send_welcome_msg"


def welcoming_router(failures: list[str]) -> Router:
    async def welcome_then_fail_once(event: ExternalContactAdded, ctx: Ctx) -> None:
        """Test rule: queue the welcome, then fail the first attempt after queuing it."""
        await ctx.queue(f"welcome:{event.welcome_code}",
                       SendWelcomeMsg(welcome_code=event.welcome_code or "",
                                      text=Text(content="欢迎！")),
                       kind="welcome", priority=FAST, deadline=ctx.now + timedelta(seconds=18))
        if event.welcome_code not in failures:
            failures.append(event.welcome_code or "")
            raise RuntimeError("the handler failed after queuing its welcome")

    router = Router("test", partial=True)  # its own handlers: no behaviour's intake
    router.add(ExternalContactAdded, welcome_then_fail_once)
    return router


async def test_a_retried_handler_queues_and_sends_its_welcome_once(db_url: str) -> None:
    failures: list[str] = []
    settings = make_settings(db_url, agent_secret="agent-secret", inbox_retry_base_s=0.05)
    async with serve_app(settings, router=welcoming_router(failures)) as app:
        plaintext = payloads.external_contact(corp_id=CORP_ID, welcome_code="WCE2E1")
        for _ in range(3):  # WeCom's retries of the same callback change nothing
            assert (await app.post_callback(plaintext)).status_code == 200
        await wait_until(lambda: _settled(app), 10)
        await app.idle()
        assert failures == ["WCE2E1"]  # the first attempt failed and rolled back its row
        [call] = app.wecom.calls_to(WELCOME)
        assert call.body == {"welcome_code": "WCE2E1", "text": {"content": "欢迎！"}}
        async with app.runtime.db.reader() as session:
            [row] = (await session.execute(select(OutboxMessage))).scalars()
        assert (row.idempotency_key, row.status, row.priority) == ("welcome:WCE2E1", "sent", 0)


async def _settled(app) -> bool:  # type: ignore[no-untyped-def]
    """The welcome reached WeCom and its outcome is written (a moment after the request)."""
    async with app.runtime.db.reader() as session:
        statuses = list((await session.execute(select(OutboxMessage.status))).scalars())
    return statuses == ["sent"]
