"""Every request body is bounded (413 above SOPBOT_MAX_REQUEST_BYTES, declared or streamed),
and a 422 names what is wrong without echoing what was sent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.directory.models import PlatformUser
from app.engine.db import utcnow
from app.members import service as members
from app.verify.links import links_for
from app.verify.models import Verification
from tests.conftest import API_KEY, RunningApp, make_settings, rows_of, serve_app
from tests.console.conftest import (
    PASSWORD,
    console_settings,
    give_password,
    logged_in,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}
LIMIT = 64 * 1024  # small, so the oversized cases stay cheap


@pytest.fixture
async def running(db_url: str) -> AsyncIterator[RunningApp]:
    settings = console_settings(db_url, max_request_bytes=LIMIT)
    async with serve_app(settings, run_worker=False) as app:
        yield app


def users(count: int) -> list[dict[str, str]]:
    return [{"platform_user_id": f"u{n}", "phone": f"138{n:08d}",
             "name": f"店主{n}"} for n in range(count)]


async def test_an_api_body_over_the_limit_is_413_and_never_read(running: RunningApp) -> None:
    big = json.dumps(users(2000)).encode()
    assert len(big) > LIMIT
    answer = await running.client.post("/api/platform-users", content=big,
                                       headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 413
    assert len(answer.content) < 200  # nothing of the body comes back

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for start in range(0, len(big), 8192):
            yield big[start:start + 8192]

    streamed = await running.client.post("/api/platform-users", content=chunks(),
                                         headers={**AUTH, "Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert await rows_of(running.runtime.db, PlatformUser) == []
    small = await running.client.post("/api/platform-users", json=users(3), headers=AUTH)
    assert small.status_code == 200, small.text


async def test_a_422_says_where_and_what_never_the_value(running: RunningApp) -> None:
    secret_ish = "13912345678-sk-" + "Z" * 5000
    bad = [{"platform_user_id": secret_ish, "phone": secret_ish, "name": 7}]
    answer = await running.client.post("/api/platform-users", json=bad, headers=AUTH)
    assert answer.status_code == 422
    assert secret_ish[:11] not in answer.text and "ZZZZ" not in answer.text
    problems = answer.json()["detail"]
    assert problems and all(set(p) == {"loc", "msg", "type"} for p in problems)
    assert ["body", 0, "platform_user_id"] in [p["loc"] for p in problems]
    garbage = await running.client.post("/api/funnel/events", content=b"{" + b"Y" * 3000,
                                        headers={**AUTH, "Content-Type": "application/json"})
    assert garbage.status_code == 422 and "YYYY" not in garbage.text


async def test_a_console_form_over_the_limit_is_413(db_url: str) -> None:
    async with serve_app(console_settings(db_url, max_request_bytes=LIMIT),
                         run_worker=False) as app:
        await give_password(app, "op_alice", PASSWORD)
        console = await logged_in(app, app.client)
        answer = await console.post("/console/outbox/retry", {"ids": "1," * LIMIT})
        assert answer.status_code == 413


async def test_the_default_limit_takes_the_largest_list_the_api_allows(db_url: str) -> None:
    """5,000 platform users, the most one request may carry, each with the longest id and name
    allowed (in JSON's \\u escapes), fit in the default limit."""
    async with serve_app(make_settings(db_url), run_worker=False) as app:
        listing = [{"platform_user_id": f"{n:05d}" + "x" * 59, "phone": f"138{n:08d}",
                    "name": "店" * 64} for n in range(5000)]
        body = json.dumps(listing).encode()
        assert len(body) > 2 * 1024 * 1024
        answer = await app.client.post("/api/platform-users", content=body,
                                       headers={**AUTH, "Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text[:300]


async def test_the_photo_form_takes_photos_past_the_api_limit(db_url: str,
                                                           tmp_path: Path) -> None:
    """Three shop photos of a few MB each are more than SOPBOT_MAX_REQUEST_BYTES: the form
    has its own bound (SOPBOT_PHOTO_MAX_BYTES per photo)."""
    settings = make_settings(db_url, max_request_bytes=LIMIT, photo_dir=tmp_path / "photos")
    async with serve_app(settings, run_worker=False) as app:
        async with app.runtime.db.unit_of_work() as session:
            await members.create(session, utcnow(), "test", channel="douyin",
                                 external_userid="wmBigPhotos", staff_userid="lisi")
        link = f"/verify/{links_for(app.runtime.settings).token('wmBigPhotos')}"
        photo = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * (12 * 1024)
        answer = await app.client.post(link, data={
            "phone": "13800138000", "identity_type": "physical_shop", "region": "广东"},
            files=[("photos", (f"shop{n}.jpg", photo, "image/jpeg")) for n in range(3)])
        assert answer.status_code == 200, answer.text[:300]
        assert len(await rows_of(app.runtime.db, Verification)) == 1
