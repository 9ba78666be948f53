"""The handler harness (tests/handlers/harness.py) on each test database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.engine.config import Settings
from tests.conftest import make_settings
from tests.handlers.harness import Bot


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """The suite's settings, with verification photos in the test's own directory."""
    return make_settings(db_url, photo_dir=tmp_path / "photos")


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[Bot]:
    """The real router and flows on a migrated, empty database (SQLite, or PostgreSQL)."""
    opened = Bot.open(settings)
    try:
        yield opened
    finally:
        await opened.close()
