"""The groups tests' running app: the service with the transport-level WeCom fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import RunningApp, make_settings, serve_app
from tests.fakes.wecom import FakeWeCom


@pytest.fixture
async def running(db_url: str) -> AsyncIterator[tuple[RunningApp, FakeWeCom]]:
    fake = FakeWeCom()
    settings = make_settings(db_url, agent_secret="agent-secret", outbox_retry_base_s=0.05)
    async with serve_app(settings, wecom=fake) as app:
        yield app, fake
