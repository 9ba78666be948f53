"""The one-to-one record through the real /verify form: one phone and one platform user id per
verified member. A second account claiming them waits for a reviewer, flagged with the member
who holds them; the reviewer moves the link (the other unlinked, its history kept) or rejects.
Photos must decode, be large enough and not be another member's image to be approved by rule;
a photo that fails is a reason for the reviewer, never a rejection and never a 500."""

from __future__ import annotations

import asyncio
import io
import struct
import zlib

import pytest
from PIL import Image

from app.members.models import Member
from tests.verify.conftest import AUTH, VerifyApp, picture

pytestmark = pytest.mark.asyncio

PHONE = "13800138000"


def red_square(size: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (255, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A PNG of a few hundred bytes whose header claims 900 million pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))


async def _directory(app: VerifyApp, platform_user_id: str = "u42", phone: str = PHONE) -> None:
    response = await app.client.post("/api/platform-users", headers=AUTH, json=[
        {"platform_user_id": platform_user_id, "phone": phone}])
    assert response.status_code == 200


async def _verified(app: VerifyApp, external_userid: str = "wm_owner") -> Member:
    """A member auto-approved on a directory match (their phone and id are linked to them)."""
    member, path = await app.member(external_userid)
    response = await app.submit(path, phone=PHONE)
    assert "认证通过" in response.text
    return await app.fresh_member(member.id)


async def _review(app: VerifyApp, member_id: int) -> dict:  # type: ignore[type-arg]
    rows = [r for r in await app.verifications() if r.member_id == member_id]
    response = await app.client.get(f"/api/reviews/{rows[-1].id}", headers=AUTH)
    return response.json()


async def test_the_phone_of_a_verified_member_on_another_link_waits_flagged(
        verify_app: VerifyApp) -> None:
    """The issue's case: a verified member's phone through another member's link, with a 64×64
    red square as the photo, was approved and routed, and both members shared the phone."""
    await _directory(verify_app)
    owner = await _verified(verify_app)
    claimant, path = await verify_app.member("wm_claimant")
    response = await verify_app.submit(path, phone=PHONE,
                                       photos=[("red.png", red_square())])
    assert response.status_code == 200
    assert "正在审核中" in response.text and "认证通过" not in response.text
    review = await _review(verify_app, claimant.id)
    assert review["status"] == "pending"
    assert review["held_by"] == [owner.id]
    assert review["checks"] == [
        f"提交时手机号已绑定会员 #{owner.id}：仍绑定时不能直接通过，"
        "可转移绑定（原会员解除绑定，记录保留）或拒绝",
        f"提交时平台用户 ID u42 已绑定会员 #{owner.id}：仍绑定时不能直接通过，可转移绑定或拒绝",
        "第 1 张照片只有 64×64 像素，小于 300×300"]
    owner = await verify_app.fresh_member(owner.id)
    assert (owner.status, owner.link_state) == ("routed", "linked")
    waiting = await verify_app.fresh_member(claimant.id)
    assert (waiting.status, waiting.link_state, waiting.segment) == ("submitted", None, None)


async def test_approving_what_another_member_holds_is_refused_moving_it_is_recorded(
        verify_app: VerifyApp) -> None:
    await _directory(verify_app)
    owner = await _verified(verify_app)
    claimant, path = await verify_app.member("wm_claimant")
    await verify_app.submit(path, phone=PHONE)
    review = (await _review(verify_app, claimant.id))["id"]
    refused = await verify_app.client.post(f"/api/reviews/{review}/approve",
                                           json={"reviewer": "alice"}, headers=AUTH)
    assert refused.status_code == 409
    assert f"#{owner.id}" in refused.json()["detail"] and "move" in refused.json()["detail"]
    assert (await verify_app.fresh_member(claimant.id)).status == "submitted"
    moved = await verify_app.client.post(f"/api/reviews/{review}/move",
                                         json={"reviewer": "alice"}, headers=AUTH)
    assert moved.status_code == 200 and moved.json()["status"] == "approved"
    new, old = (await verify_app.fresh_member(claimant.id),
                await verify_app.fresh_member(owner.id))
    assert (new.link_state, new.phone, new.platform_user_id) == ("linked", PHONE, "u42")
    # The old member keeps its record: phone, id, status; only the link is gone, and why.
    assert (old.link_state, old.flag, old.phone, old.platform_user_id, old.status) == (
        None, "link_moved", PHONE, "u42", "routed")
    history = await verify_app.history(owner.id)
    assert ("link_state", None, "review:alice") in history
    assert ("unlinked", f"转移给会员 #{claimant.id}", "review:alice") in history
    owners_review = [r for r in await verify_app.verifications() if r.member_id == owner.id]
    assert [r.status for r in owners_review] == ["approved"]  # nothing deleted


async def test_rejecting_the_claim_leaves_the_holder_linked(verify_app: VerifyApp) -> None:
    await _directory(verify_app)
    owner = await _verified(verify_app)
    claimant, path = await verify_app.member("wm_claimant")
    await verify_app.submit(path, phone=PHONE)
    review = (await _review(verify_app, claimant.id))["id"]
    rejected = await verify_app.client.post(
        f"/api/reviews/{review}/reject", json={"reviewer": "alice", "reason": "冒用手机号"},
        headers=AUTH)
    assert rejected.status_code == 200
    assert (await verify_app.fresh_member(owner.id)).link_state == "linked"
    assert (await verify_app.fresh_member(claimant.id)).link_state is None


async def test_a_platform_user_id_is_held_too(verify_app: VerifyApp) -> None:
    """The directory later gives the id another phone: a claim with that phone is the same
    platform user, linked to the first member."""
    await _directory(verify_app)
    owner = await _verified(verify_app)
    await verify_app.client.post("/api/platform-users", headers=AUTH, json=[
        {"platform_user_id": "u42", "phone": "13900139000"}])
    claimant, path = await verify_app.member("wm_claimant")
    await verify_app.submit(path, phone="13900139000")
    review = await _review(verify_app, claimant.id)
    assert (review["status"], review["held_by"]) == ("pending", [owner.id])
    assert review["checks"] == [
        f"提交时平台用户 ID u42 已绑定会员 #{owner.id}：仍绑定时不能直接通过，可转移绑定或拒绝"]


@pytest.mark.parametrize(("photo", "note"), [
    (red_square(), "第 1 张照片只有 64×64 像素，小于 300×300"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 500, "第 1 张照片无法解码（文件损坏，或不是图片）"),
    (picture("JPEG")[:600], "第 1 张照片无法解码（文件损坏，或不是图片）"),  # truncated
    (png_bomb(), "第 1 张照片像素数超过上限，未解码（可能是解压炸弹）"),
    (png_bomb(8000, 7000), "第 1 张照片像素数超过上限，未解码（可能是解压炸弹）"),  # > 50M
], ids=["small", "not-an-image", "truncated", "bomb", "over-limit"])
async def test_a_photo_that_fails_a_check_sends_a_match_to_review(
        verify_app: VerifyApp, photo: bytes, note: str) -> None:
    await _directory(verify_app)
    member, path = await verify_app.member("wm_shop")
    response = await verify_app.submit(path, phone=PHONE, photos=[("p.png", photo)])
    assert response.status_code == 200 and "正在审核中" in response.text
    review = await _review(verify_app, member.id)
    assert (review["status"], review["checks"], review["held_by"]) == ("pending", [note], [])


async def test_the_same_image_as_another_members_goes_to_review(verify_app: VerifyApp) -> None:
    photo = picture("JPEG")
    first, first_path = await verify_app.member("wm_first")
    await verify_app.submit(first_path, phone="13900139000", photos=[("a.jpg", photo)])
    await _directory(verify_app)
    second, path = await verify_app.member("wm_second")
    await verify_app.submit(path, phone=PHONE, photos=[("x.jpg", picture()), ("b.jpg", photo)])
    review = await _review(verify_app, second.id)
    [first_review] = [r.id for r in await verify_app.verifications() if r.member_id == first.id]
    assert review["checks"] == [
        f"第 2 张照片与会员 #{first.id} 提交的照片（认证 #{first_review}）完全相同"]
    assert review["status"] == "pending"


async def test_photos_that_pass_still_approve_a_match_by_rule(verify_app: VerifyApp) -> None:
    await _directory(verify_app)
    member, path = await verify_app.member("wm_shop")
    await verify_app.submit(path, phone=PHONE, photos=[("a.jpg", picture("JPEG", size=(300, 300))),
                                                       ("b.webp", picture("WEBP"))])
    review = await _review(verify_app, member.id)
    assert (review["status"], review["reviewer"], review["checks"]) == ("approved", "auto", [])


async def test_two_accounts_claiming_one_phone_at_once_link_one(verify_app: VerifyApp) -> None:
    await _directory(verify_app)
    paths = [(await verify_app.member(f"wm_{n}"))[1] for n in range(4)]
    await asyncio.gather(*(verify_app.submit(p, phone=PHONE) for p in paths))
    members = [await verify_app.fresh_member(v.member_id) for v in await verify_app.verifications()]
    assert [m.link_state for m in members].count("linked") == 1
    assert sorted(v.status for v in await verify_app.verifications()) == [
        "approved", "pending", "pending", "pending"]
