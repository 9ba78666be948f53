"""Browser tests: Playwright driving Debian's Chromium (never a browser of its own download,
which this network cannot fetch). Without a Chromium they are skipped, and say why.

Each test launches a Chromium of its own (Playwright gives it a fresh profile in a temporary
directory), so pytest-xdist's workers never share a browser.

Screenshots go to $SOPBOT_SCREENSHOT_DIR when it is set (the README's come from
`SOPBOT_SCREENSHOT_DIR=docs/screenshots pytest tests/browser`), else to the test's tmp dir.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Chromium's own traffic (updates, sync, safe browsing) has nowhere to go here; without these
# flags it keeps knocking on a closed network. --no-sandbox: CI runs as root.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    explicit = os.environ.get("SOPBOT_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium found (install Debian's chromium package, or set "
                    "SOPBOT_CHROMIUM): browser tests skipped")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path, args=FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


# Resolved now: some tests change the working directory before they take their pictures.
SCREENSHOT_DIR = os.environ.get("SOPBOT_SCREENSHOT_DIR")
SCREENSHOT_DIR = str(Path(SCREENSHOT_DIR).resolve()) if SCREENSHOT_DIR else None


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    target = Path(SCREENSHOT_DIR or tmp_path / "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target
