"""A sender on a real database and the fake WeCom at the transport seam."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.engine import wakeups
from app.engine.config import Settings, parse_rates
from app.engine.db import Database
from app.engine.outbox import store
from app.engine.outbox.models import PENDING, OutboxMessage
from app.engine.outbox.ratelimit import RateLimits
from app.engine.outbox.sender import OutboxSender
from app.engine.wakeups import Wakeups
from app.engine.wecom.api import ApiCall, SendWelcomeMsg, Text, WebhookSend, WebhookText
from app.engine.wecom.tokens import TokenStore
from app.engine.wecom.wiring import build_wecom
from tests.conftest import make_settings
from tests.fakes.wecom import Call, FakeWeCom

ROBOT, ROBOT_KEY = "ops", "robot-key-0001"


def outbox_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        agent_secret="agent-secret", robots=f"{ROBOT}={ROBOT_KEY}", outbox_retry_base_s=0.01,
        outbox_retry_max_s=0.05, outbox_sweep_s=0.05, wecom_timeout_s=2.0,
        rate_limits="webhook/send=100/1")  # the real 20/60 would make tests wait 3 s a post
    values.update(overrides)
    return make_settings(db_url, **values)


@dataclass
class Outbox:
    db: Database
    http: httpx.AsyncClient
    fake: FakeWeCom
    sender: OutboxSender
    tokens: TokenStore
    settings: Settings

    def new_sender(self, **kwargs: Any) -> OutboxSender:
        """Another sender process on the same database (its own owner id)."""
        return OutboxSender(self.db, self.sender.client, self.settings,
                            RateLimits(parse_rates(self.settings.rate_limits)), **kwargs)

    async def enqueue(self, key: str, call: ApiCall[Any], **kwargs: Any) -> bool:
        kwargs.setdefault("kind", call.path.rsplit("/", 1)[-1])
        async with self.db.unit_of_work() as session:
            return await store.enqueue(session, key, call, **kwargs)

    async def rows(self) -> dict[str, OutboxMessage]:
        async with self.db.reader() as session:
            result = await session.execute(select(OutboxMessage))
            return {row.idempotency_key: row for row in result.scalars()}

    async def row(self, key: str) -> OutboxMessage:
        return (await self.rows())[key]

    async def drain_until_settled(self, timeout: float = 10.0) -> None:
        """Drain both lanes again and again until no row is pending (retries included)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self.sender.drain(True)
            await self.sender.drain(False)
            if all(row.status != PENDING for row in (await self.rows()).values()):
                return
            await asyncio.sleep(0.01)
        raise AssertionError("outbox rows still pending")


def make_outbox(db_url: str, fake: FakeWeCom, **overrides: Any) -> Outbox:
    settings = outbox_settings(db_url, **overrides)
    db = Database(db_url)
    http, wecom, tokens = build_wecom(settings, db, fake.transport)
    sender = OutboxSender(db, wecom, settings, RateLimits(parse_rates(settings.rate_limits)))
    wake = Wakeups()
    wake.on(wakeups.OUTBOX_PENDING, sender.on_pending)
    db.commit_hooks.append(wake)
    return Outbox(db, http, fake, sender, tokens, settings)


@pytest.fixture
def fake() -> FakeWeCom:
    return FakeWeCom(robot_keys=[ROBOT_KEY])


@pytest.fixture
async def outbox(db_url: str, fake: FakeWeCom) -> AsyncIterator[Outbox]:
    box = make_outbox(db_url, fake)
    try:
        yield box
    finally:
        await box.sender.stop()
        await box.http.aclose()
        await box.db.dispose()


def welcome(code: str, text: str = "欢迎加入！") -> SendWelcomeMsg:
    return SendWelcomeMsg(welcome_code=code, text=Text(content=text))


def robot_text(content: str) -> WebhookSend:
    return WebhookSend(robot=ROBOT, msgtype="text", text=WebhookText(content=content))


def texts(calls: list[Call]) -> list[str]:
    return [call.body["text"]["content"] for call in calls]
