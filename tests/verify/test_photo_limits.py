"""What a photo costs the service (issue 14 item 2, review): a member who may not submit costs a
query, never a decode; decodes are bounded process-wide; the shipped pixel limit is what a phone
photo needs; a sliver of a JPEG is too small, not unreadable; and decoding leaves the process's
warning filters alone (they are shared by every thread)."""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time
import warnings
from pathlib import Path

import pytest
from PIL import Image

from app.verify import photos
from tests.verify.conftest import VerifyApp, picture
from tests.verify.test_one_to_one import PHONE, _directory, _review, png_bomb

pytestmark = pytest.mark.asyncio


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The photos really inspected (the real _inspect runs; its calls are recorded)."""
    seen: list[str] = []
    real = photos._inspect

    def counting(path: Path, max_pixels: int) -> photos.Inspected:
        seen.append(path.name)
        return real(path, max_pixels)

    monkeypatch.setattr(photos, "_inspect", counting)
    return seen


async def test_a_replayed_link_decodes_no_photo(verify_app: VerifyApp,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    decoded = _count_decodes(monkeypatch)
    _, path = await verify_app.member()
    assert "正在审核中" in (await verify_app.submit(path)).text
    for _ in range(3):
        again = await verify_app.submit(path, photos=[("a.png", picture("PNG", size=(900, 900)))])
        assert again.status_code == 200 and "正在审核中" in again.text
    assert len(decoded) == 1
    assert len(verify_app.stored_files()) == 1 and len(await verify_app.verifications()) == 1


async def test_an_unknown_member_decodes_no_photo(verify_app: VerifyApp,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from app.verify.links import links_for

    decoded = _count_decodes(monkeypatch)
    token = links_for(verify_app.running.runtime.settings).token("wm_nobody")
    response = await verify_app.submit(f"/verify/{token}")
    assert response.status_code == 404
    assert decoded == [] and verify_app.stored_files() == []


async def test_at_most_two_submissions_decode_at_once(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    running, most = 0, 0
    lock = threading.Lock()
    real = photos._inspect

    def slow(path: Path, max_pixels: int) -> photos.Inspected:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)  # a decode takes a while: concurrent ones overlap
        try:
            return real(path, max_pixels)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(photos, "_inspect", slow)
    names = await photos.store([photos.Photo(picture("PNG"), "png")], tmp_path)
    found = await asyncio.gather(*(photos.inspect(names, tmp_path, 24_000_000) for _ in range(6)))
    assert all(f[0].width == 320 for f in found)
    assert most == 2


async def test_the_shipped_limit_is_a_phone_photo(verify_app: VerifyApp) -> None:
    """5000×5000 (25 M) is past a 4000×6000 phone photo: not decoded."""
    assert verify_app.running.runtime.flows.verify.photo_checks.max_pixels == 24_000_000
    await _directory(verify_app)
    member, path = await verify_app.member("wm_shop")
    await verify_app.submit(path, phone=PHONE, photos=[("p.png", png_bomb(5000, 5000))])
    review = await _review(verify_app, member.id)
    assert review["checks"] == ["第 1 张照片像素数超过上限，未解码（可能是解压炸弹）"]


async def test_a_jpeg_narrower_than_4_pixels_is_too_small(verify_app: VerifyApp) -> None:
    await _directory(verify_app)
    member, path = await verify_app.member("wm_shop")
    await verify_app.submit(path, phone=PHONE,
                            photos=[("s.jpg", picture("JPEG", size=(2, 600)))])
    review = await _review(verify_app, member.id)
    assert review["checks"] == ["第 1 张照片只有 2×600 像素，小于 300×300"]


def _noise(size: int) -> bytes:
    image = Image.frombytes("RGB", (size, size), os.urandom(size * size * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


def _bomb_filter_set() -> bool:
    return any(f[0] == "error" and f[2] is Image.DecompressionBombWarning
               for f in warnings.filters)


async def test_decoding_leaves_the_process_warning_filters_alone(tmp_path: Path) -> None:
    """Another thread watching the filters while photos decode never sees them changed."""
    names = await photos.store([photos.Photo(_noise(1500), "png")], tmp_path)
    assert not _bomb_filter_set()
    done, seen = threading.Event(), []

    def watch() -> None:
        while not done.is_set():
            if _bomb_filter_set():
                seen.append(True)
                return
            time.sleep(0)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(5):
            [found] = await photos.inspect(names, tmp_path, 24_000_000)
            assert found.problem is None
    finally:
        done.set()
        watcher.join()
    assert seen == []
