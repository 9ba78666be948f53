"""Events of one group (or one customer, or one kf dialog) are handled in arrival order, even
with several lanes and replicas draining the inbox at once; events of different groups still
run side by side, and a failing event holds back only its own group until it is parked."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import select

from app.engine.bot.context import Ctx
from app.engine.bot.router import Router
from app.engine.config import Settings
from app.engine.inbox.models import InboxEvent
from app.engine.wecom.events import ChatMemberJoined, ChatMemberLeft, ExternalChatUpdated
from tests.conftest import RunningApp, make_settings, serve_app, wait_until
from tests.fakes import payloads

CHATS = [f"wrORDER{i:02d}" for i in range(4)]
STEPS = 6  # join, quit, join, quit, … per group
START = 1_700_000_000  # CreateTime of the first step; the steps count up from it


def ordered_router(seen: list[tuple[str, int]], fail_chat: str | None = None) -> Router:
    async def record_membership_change(event: ExternalChatUpdated, ctx: Ctx) -> None:
        """Test rule: note each group's change with its position; slow and uneven, so that a
        later event of a group would overtake an earlier one if the inbox let it."""
        if event.chat_id == fail_chat and event.create_time == START:
            seen.append((event.chat_id, START - 1))  # each failed attempt, as step -1
            raise RuntimeError("simulated failure")
        await asyncio.sleep(random.uniform(0, 0.02))
        seen.append((event.chat_id, event.create_time))

    router = Router("test", partial=True)  # its own handlers: no behaviour's intake
    router.add(ChatMemberJoined, record_membership_change)
    router.add(ChatMemberLeft, record_membership_change)
    return router


async def post_changes(app: RunningApp) -> None:
    """Each group's changes, interleaved across groups; CreateTime numbers them in order."""
    for step in range(STEPS):
        for chat in CHATS:
            detail = "add_member" if step % 2 == 0 else "del_member"
            response = await app.post_callback(payloads.external_chat(
                chat_id=chat, update_detail=detail, create_time=START + step))
            assert response.status_code == 200


def per_chat(seen: list[tuple[str, int]]) -> dict[str, list[int]]:
    return {chat: [t - START for c, t in seen if c == chat] for chat in CHATS}


async def test_one_groups_events_keep_their_order_across_lanes_and_replicas(
        settings: Settings) -> None:
    seen: list[tuple[str, int]] = []
    settings = make_settings(settings.database_url, inbox_concurrency=4)
    async with serve_app(settings, run_worker=False, router=ordered_router(seen)) as a, \
            serve_app(settings, run_worker=False, router=ordered_router(seen)) as b:
        await post_changes(a)
        drained = await asyncio.gather(*(w.drain() for w in (a.runtime.worker,
                                                                b.runtime.worker) * 2))
        assert sum(drained) == len(CHATS) * STEPS
        assert per_chat(seen) == {chat: list(range(STEPS)) for chat in CHATS}


async def test_a_failing_event_holds_back_its_group_only_until_it_is_parked(
        settings: Settings) -> None:
    seen: list[tuple[str, int]] = []
    settings = make_settings(settings.database_url, inbox_max_attempts=2,
                             inbox_retry_base_s=0.2, inbox_retry_max_s=0.2)
    async with serve_app(settings, router=ordered_router(seen, fail_chat=CHATS[0])) as app:
        await post_changes(app)

        async def others_done() -> bool:
            return all(len(steps) == STEPS for chat, steps in per_chat(seen).items()
                       if chat != CHATS[0])

        await wait_until(others_done, 15)
        await wait_until(lambda: _parked(app), 15)
        await app.idle()
        # The first change of the failing group failed twice and was parked; only then did
        # the rest follow, in order.
        assert per_chat(seen)[CHATS[0]] == [-1, -1, *range(1, STEPS)]


async def _parked(app: RunningApp) -> bool:
    async with app.runtime.db.sessions() as session:
        statuses = (await session.execute(select(InboxEvent.status))).scalars().all()
    return "failed" in statuses and "pending" not in statuses
