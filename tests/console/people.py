"""Members, submissions and directory entries for the review and member page tests, made
through the services the handlers use (so history and funnel rows are the real ones)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.directory.service import UserRow, upsert
from app.engine.db import utcnow
from app.funnel.models import FunnelEvent
from app.members import service as members
from app.members.models import Member
from app.routing.service import after_approval
from app.verify import service as verify
from app.verify.flows import AutoApprove
from app.verify.photos import Photo, inspect, store
from tests.conftest import OPERATOR, RunningApp, serve_app
from tests.console.conftest import (
    OTHER,
    OTHER_PASSWORD,
    PASSWORD,
    Console,
    console_settings,
    give_password,
)

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 300
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 300
REVIEW_IDS = re.compile(r'<(?:article|tr) class="[^"]*" data-review="(\d+)"')


@pytest.fixture
async def console_app(db_url: str, tmp_path: Path) -> AsyncIterator[RunningApp]:
    """conftest's console_app, with a photo directory of its own."""
    settings = console_settings(db_url, photo_dir=tmp_path / "photos")
    async with serve_app(settings, run_worker=False) as app:
        await give_password(app, OPERATOR, PASSWORD)
        await give_password(app, OTHER, OTHER_PASSWORD)
        yield app


async def add_member(app: RunningApp, external_userid: str, *, channel: str = "douyin",
                     at: datetime | None = None) -> int:
    async with app.runtime.db.unit_of_work() as session:
        member = await members.create(session, at or utcnow(), "callback", channel=channel,
                                      external_userid=external_userid, staff_userid="lisi")
        return member.id


async def submit(app: RunningApp, member_id: int, *, phone: str = "13800138000",
                 identity_type: str = "physical_shop", region: str = "广东",
                 photos: tuple[bytes, ...] = (JPEG,), at: datetime | None = None) -> int:
    """A submission left pending for a person (sop_flows' auto-approval switched off, so a
    directory match waits in the queue too); its verification id."""
    runtime = app.runtime
    names = await store([Photo(data, "jpg" if data[:2] == b"\xff\xd8" else "png")
                         for data in photos], runtime.settings.photo_dir)
    flows = runtime.flows.verify.model_copy(update={"auto_approve": AutoApprove()})
    async with runtime.db.unit_of_work() as session:
        member = await session.get(Member, member_id)
        assert member is not None
        row, created = await verify.submit(
            session, member, verify.Submission(phone, identity_type, region),
            await inspect(names, runtime.settings.photo_dir, flows.photo_checks.max_pixels), flows,
            at or utcnow(), after_approval(runtime.flows, runtime.settings))
        assert created
        return row.id


async def pending_review(app: RunningApp, external_userid: str, **fields: Any) -> int:
    return await submit(app, await add_member(app, external_userid), **fields)


async def add_directory(app: RunningApp, platform_user_id: str, phone: str,
                        name: str | None = None) -> None:
    async with app.runtime.db.unit_of_work() as session:
        await upsert(session, [UserRow(platform_user_id=platform_user_id, phone=phone,
                                       name=name)], utcnow())


async def fetch(app: RunningApp, model: type, **where: Any) -> list[Any]:  # type: ignore[type-arg]
    """The rows of `model` with these column values, oldest first."""
    query = select(model).filter_by(**where).order_by(model.id)
    async with app.runtime.db.reader() as session:
        return list(await session.scalars(query))


async def steps_of(app: RunningApp, member_id: int) -> list[str]:
    return [e.step for e in await fetch(app, FunnelEvent, member_id=member_id)]


async def decide(console: Console, ids: list[int], action: str,
                 **fields: str) -> httpx.Response:
    """The review form's POST (CSRF added); asserts the redirect back to the queue."""
    data: dict[str, Any] = {"ids": [str(i) for i in ids], "action": action, **fields,
                            "csrf_token": console.csrf}
    response = await console.client.post("/console/reviews/decide", data=data)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console/reviews"
    return response


def listed(html: str) -> list[int]:
    """The review ids a queue page lists, in order."""
    return [int(found) for found in REVIEW_IDS.findall(html)]
