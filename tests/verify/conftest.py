"""The app under a real uvicorn with a photo directory of its own, members to verify, and
images to upload: real ones (they decode, 320×320, each its own bytes) unless a test wants a
broken one."""

from __future__ import annotations

import io
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from app.engine.db import utcnow
from app.funnel.models import FunnelEvent
from app.members import service as members
from app.members.models import Member, MemberHistory
from app.verify.links import links_for
from app.verify.models import Verification
from tests.conftest import API_KEY, RunningApp, make_settings, rows_of, serve_app

MAX_BYTES = 64 * 1024  # small, so the oversized case stays cheap
_SEEDS = itertools.count(100)


def picture(fmt: str = "JPEG", seed: int | None = None, size: tuple[int, int] = (320, 320),
            colour: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    """A real image; each seed gives other bytes (a fresh one by default), so two members'
    photos are not the same image unless a test means them to be."""
    seed = next(_SEEDS) if seed is None else seed
    image = Image.new("RGB", size, colour)
    for i in range(24):  # the seed's bits as black or white pixels: lossless enough for JPEG
        block = (i * 8, 0, i * 8 + 8, 8)
        image.paste((255, 255, 255) if seed >> i & 1 else (0, 0, 0), block)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"comment": f"seed {seed}"} if fmt == "JPEG" else {}))
    return buffer.getvalue()


JPEG = picture("JPEG", 1)
PNG = picture("PNG", 2)
WEBP = picture("WEBP", 3)
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@dataclass
class VerifyApp:
    running: RunningApp
    photo_dir: Path

    @property
    def client(self):  # type: ignore[no-untyped-def]
        return self.running.client

    async def member(self, external_userid: str = "wm_shop_1") -> tuple[Member, str]:
        """A member as the friend-add handler leaves it, and their verification link path."""
        async with self.running.runtime.db.unit_of_work() as session:
            member = await members.create(session, utcnow(), "test", channel="douyin",
                                          external_userid=external_userid, staff_userid="lisi")
        token = links_for(self.running.runtime.settings).token(external_userid)
        return member, f"/verify/{token}"

    async def submit(self, path: str, *, phone: str = "13800138000",
                     identity_type: str = "physical_shop", region: str = "广东",
                     photos: list[tuple[str, bytes]] | None = None) -> Any:
        files = [("photos", (name, data, "image/jpeg"))
                 for name, data in ([("shop.jpg", picture())] if photos is None else photos)]
        data = {"phone": phone, "identity_type": identity_type, "region": region}
        # An empty file input, as a browser sends it when no file is chosen.
        files = files or [("photos", ("", b"", "application/octet-stream"))]
        return await self.client.post(path, data=data, files=files)

    async def all(self, model: type) -> list[Any]:  # type: ignore[type-arg]
        return await rows_of(self.running.runtime.db, model)

    async def verifications(self) -> list[Verification]:
        return await self.all(Verification)

    async def steps(self) -> list[str]:
        return [event.step for event in await self.all(FunnelEvent)]

    async def fresh_member(self, member_id: int) -> Member:
        async with self.running.runtime.db.reader() as session:
            member = await session.get(Member, member_id)
            assert member is not None
            return member

    async def history(self, member_id: int) -> list[tuple[str, str | None, str]]:
        rows = [h for h in await self.all(MemberHistory) if h.member_id == member_id]
        return [(h.field, h.new, h.source) for h in rows]

    def stored_files(self) -> list[Path]:
        return sorted(self.photo_dir.iterdir()) if self.photo_dir.exists() else []


@pytest.fixture
async def verify_app(db_url: str, tmp_path: Path) -> AsyncIterator[VerifyApp]:
    photo_dir = tmp_path / "photos"
    settings = make_settings(db_url, photo_dir=photo_dir, photo_max_bytes=MAX_BYTES,
                             agent_secret="agent-secret")
    async with serve_app(settings) as running:
        yield VerifyApp(running, photo_dir)
