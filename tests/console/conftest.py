"""The console under a real uvicorn, and a client logged in to it.

`console` gives a `Console`: the running app, an httpx client logged in as OPERATOR (its
cookies kept by the client) and the session's CSRF token. Page tests use it like this:

    async def test_my_page(console: Console) -> None:
        page = await console.client.get("/console/my-page")
        done = await console.post("/console/my-page/do", {"field": "value"})  # CSRF added
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.faces.console.accounts import set_password
from tests.conftest import OPERATOR, RunningApp, make_settings, serve_app

PASSWORD = "correct-horse-42"
OTHER = "op_bob"  # a second operator, with a password of their own
OTHER_PASSWORD = "battery-staple-7"
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def console_settings(db_url: str, **overrides: object) -> Any:
    """Two operators; X-Forwarded-For believed from 127.0.0.1 (a proxy on the same host), so
    a test's browser can stand at any address (tests/console/test_login.py `browser_at`)."""
    values: dict[str, object] = {"operators": frozenset({OPERATOR, OTHER}),
                                 "trusted_proxies": ("127.0.0.1",)}
    return make_settings(db_url, **(values | overrides))


async def give_password(app: RunningApp, userid: str, password: str) -> None:
    async with app.runtime.db.unit_of_work() as session:
        await set_password(session, userid, password)


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    match = CSRF.search(html)
    assert match is not None, "the page has no form with a CSRF token"
    return match.group(1)


async def log_in(client: httpx.AsyncClient, userid: str, password: str,
                 next_path: str | None = None) -> httpx.Response:
    """Log in as a browser does: load the form (its token and nonce cookie), post it."""
    form = await client.get("/console/login", params={"next": next_path} if next_path else None)
    assert form.status_code == 200, form.text
    return await client.post("/console/login", data={
        "userid": userid, "password": password, "csrf_token": csrf_of(form.text),
        "next": next_path or "/console"})


def new_client(app: RunningApp) -> httpx.AsyncClient:
    """A browser of its own (no cookies); close it with `async with`."""
    return httpx.AsyncClient(base_url=app.base_url, timeout=10)


@dataclass
class Console:
    app: RunningApp
    client: httpx.AsyncClient
    csrf: str

    async def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        """A form POST from a console page: with the session's CSRF token."""
        return await self.client.post(path, data={**(data or {}), "csrf_token": self.csrf})


async def logged_in(app: RunningApp, client: httpx.AsyncClient, userid: str = OPERATOR,
                    password: str = PASSWORD) -> Console:
    response = await log_in(client, userid, password)
    assert response.status_code == 303, response.text
    page = await client.get("/console/funnel")
    assert page.status_code == 200, page.text
    return Console(app, client, csrf_of(page.text))


@pytest.fixture
async def console_app(db_url: str) -> AsyncIterator[RunningApp]:
    """The app with two operators who have passwords; nobody logged in."""
    async with serve_app(console_settings(db_url), run_worker=False) as app:
        await give_password(app, OPERATOR, PASSWORD)
        await give_password(app, OTHER, OTHER_PASSWORD)
        yield app


@pytest.fixture
async def console(console_app: RunningApp) -> Console:
    """OPERATOR logged in on the app's own client."""
    return await logged_in(console_app, console_app.client)
