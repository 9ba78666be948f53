"""No console page or API answers without a login, and no POST acts without the CSRF token.

The walk reads the app's routes, so a page added later is covered without touching this file.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount

from app.engine.config import Settings
from app.engine.db import utcnow
from app.faces.console import routes
from app.faces.console.render import STATIC_PATH
from app.faces.console.sessions import SESSION_COOKIE
from app.faces.web.main import create_app
from app.funnel.models import FunnelEvent
from app.funnel.service import record
from tests.conftest import OPERATOR, RunningApp, rows_of, serve_app
from tests.console.conftest import (
    PASSWORD,
    Console,
    console_settings,
    give_password,
    logged_in,
    new_client,
)

OPEN = {"/console/login"}
PARAM = re.compile(r"{[^}]+}")

# Pages added for this test: one that writes a row (a refused POST must change nothing) and
# one under /console/api/ (answered 401, never redirected).
probe = APIRouter()


@probe.post("/probe/write")
async def probe_write(request: Request) -> dict[str, str]:
    async with request.app.state.runtime.db.unit_of_work() as session:
        await record(session, "click", "probe:1", utcnow())
    return {"written": "yes"}


@probe.get("/api/probe/{item_id}")
async def probe_api(item_id: int) -> dict[str, str]:
    return {"data": "secret"}


@pytest.fixture
def settings_with_probe(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr(routes, "PAGES", (*routes.PAGES, probe))
    return console_settings(db_url)


@pytest.fixture
async def guarded_app(settings_with_probe: Settings) -> AsyncIterator[RunningApp]:
    async with serve_app(settings_with_probe, run_worker=False) as app:
        await give_password(app, OPERATOR, PASSWORD)
        yield app


def console_routes(settings: Settings) -> list[tuple[str, str]]:
    """(method, path with its parameters filled) of every console route but the login."""
    found = []
    for context in iter_route_contexts(create_app(settings).routes):
        path = context.path or ""
        if not (path == "/console" or path.startswith("/console/")) or path in OPEN:
            continue
        if isinstance(context.original_route, Mount):
            assert path == STATIC_PATH, f"a mount under /console skips the login: {path}"
            continue
        assert isinstance(context.original_route, APIRoute), f"unexpected route {path}"
        found += [(method, PARAM.sub("1", path)) for method in sorted(context.methods or ())]
    return found


def expect_refused(method: str, path: str, response: httpx.Response) -> None:
    where = f"{method} {path}"
    if method == "GET" and not path.startswith("/console/api/"):
        assert response.status_code == 303, where
        assert response.headers["location"].startswith("/console/login?next=%2Fconsole"), where
    else:
        assert response.status_code == 401, where
    assert "secret" not in response.text, where


async def test_every_console_route_needs_a_login(guarded_app: RunningApp,
                                                 settings_with_probe: Settings) -> None:
    walked = console_routes(settings_with_probe)
    assert {("GET", "/console/funnel"), ("POST", "/console/logout"),
            ("POST", "/console/probe/write"), ("GET", "/console/api/probe/1")} <= set(walked)
    async with new_client(guarded_app) as client:
        for cookie in (None, "forged.cookie.value"):
            if cookie:
                client.cookies.set(SESSION_COOKIE, cookie, path="/console")
            for method, path in walked:
                expect_refused(method, path, await client.request(method, path))
    assert await rows_of(guarded_app.runtime.db, FunnelEvent) == []
    # The same routes answer once logged in (so the walk above did not just hit 404s).
    console = await logged_in(guarded_app, guarded_app.client)
    assert (await console.client.get("/console/api/probe/1")).json() == {"data": "secret"}


async def test_static_files_are_public(guarded_app: RunningApp) -> None:
    async with new_client(guarded_app) as client:
        css = await client.get(f"{STATIC_PATH}/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "http" not in css.text  # nothing loaded from elsewhere


async def test_a_post_without_the_right_csrf_token_is_refused(guarded_app: RunningApp) -> None:
    console: Console = await logged_in(guarded_app, guarded_app.client)
    client = console.client
    missing = await client.post("/console/probe/write", data={"x": "1"})
    wrong = await client.post("/console/probe/write", data={"csrf_token": "not-the-token"})
    as_json = await client.post("/console/probe/write", json={"csrf_token": console.csrf})
    bad_header = await client.post("/console/probe/write", headers={"X-CSRF-Token": "nope"})
    for response in (missing, wrong, as_json, bad_header):
        assert response.status_code == 403
        assert "CSRF" in response.json()["detail"]
    assert await rows_of(guarded_app.runtime.db, FunnelEvent) == []
    # Another session's token is no good either: each session has its own.
    async with new_client(guarded_app) as other:
        second = await logged_in(guarded_app, other)
    refused = await client.post("/console/probe/write", data={"csrf_token": second.csrf})
    assert refused.status_code == 403
    assert await rows_of(guarded_app.runtime.db, FunnelEvent) == []

    done = await console.post("/console/probe/write")
    header = await client.post("/console/probe/write", headers={"X-CSRF-Token": console.csrf})
    assert (done.status_code, header.status_code) == (200, 200)
    assert [row.event_key for row in await rows_of(guarded_app.runtime.db, FunnelEvent)] == [
        "probe:1"]


async def test_logout_needs_the_csrf_token(guarded_app: RunningApp) -> None:
    console = await logged_in(guarded_app, guarded_app.client)
    refused = await console.client.post("/console/logout")
    assert refused.status_code == 403
    assert (await console.client.get("/console/funnel")).status_code == 200  # still logged in
