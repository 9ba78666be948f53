"""The H5 form: rendering, the real multipart upload, bad links, bad fields and photos."""

from __future__ import annotations

import time

import pytest

from app.funnel import steps
from app.verify.links import SALT
from tests.conftest import SECRET_KEY
from tests.verify.conftest import AUTH, JPEG, MAX_BYTES, PNG, WEBP, VerifyApp

pytestmark = pytest.mark.asyncio


async def test_form_renders_in_chinese_and_counts_the_opening_once(verify_app: VerifyApp) -> None:
    _, path = await verify_app.member()
    first = await verify_app.client.get(path)
    second = await verify_app.client.get(path)
    assert first.status_code == second.status_code == 200
    assert first.headers["content-type"].startswith("text/html")
    assert first.headers["cache-control"] == "no-store"
    page = first.text
    for text in ("商家身份认证", "注册手机号", "实体店", "微商", "网店", "消费者", "广东",
                 'enctype="multipart/form-data"', 'name="photos"', "每张不超过 0.1 MB"):
        assert text in page
    assert "http://" not in page and "https://" not in page  # no external assets
    assert await verify_app.steps() == [steps.VERIFY_OPENED]


async def test_real_multipart_upload_is_stored(verify_app: VerifyApp) -> None:
    member, path = await verify_app.member()
    photos = [("../../etc/passwd.jpg", JPEG), ("门头.png", PNG), ("shelf.webp", WEBP)]
    response = await verify_app.submit(path, phone="+86 138-0013-8000", photos=photos)
    assert response.status_code == 200
    assert "正在审核中" in response.text
    [row] = await verify_app.verifications()
    assert (row.member_id, row.phone, row.identity_type, row.region, row.status) == (
        member.id, "13800138000", "physical_shop", "广东", "pending")
    assert row.platform_user_id is None
    files = verify_app.stored_files()
    assert sorted(p.name for p in files) == sorted(row.photos)
    assert [p.suffix for p in map(verify_app.photo_dir.joinpath, row.photos)] == [
        ".jpg", ".png", ".webp"]
    assert [(verify_app.photo_dir / name).read_bytes() for name in row.photos] == [
        JPEG, PNG, WEBP]
    assert not any("passwd" in name or "门头" in name for name in row.photos)
    stored = await verify_app.fresh_member(member.id)
    assert (stored.status, stored.phone, stored.identity_type, stored.region) == (
        "submitted", "13800138000", "physical_shop", "广东")
    assert ("status", "submitted", "verify") in await verify_app.history(member.id)
    assert await verify_app.steps() == [steps.SUBMITTED]


def _token_made_at(external_userid: str, at: float) -> str:
    from itsdangerous import URLSafeTimedSerializer

    class Past(URLSafeTimedSerializer):
        default_signer = type("Signer", (URLSafeTimedSerializer.default_signer,),
                              {"get_timestamp": lambda self: int(at)})
    return Past(SECRET_KEY, salt=SALT).dumps({"u": external_userid})


@pytest.mark.parametrize("method", ["get", "post"])
async def test_forged_and_expired_links_store_nothing(verify_app: VerifyApp, method: str) -> None:
    await verify_app.member("wm_shop_1")
    _, good = await verify_app.member("wm_shop_2")
    forged = "/verify/" + good.rsplit("/", 1)[1][:-2] + "xx"
    other_key = "/verify/" + _token_made_at("wm_shop_1", time.time()).replace("a", "b", 1)
    expired = "/verify/" + _token_made_at("wm_shop_1", time.time() - 73 * 3600)
    for path, status, text in ((forged, 403, "链接无效"), (other_key, 403, "链接无效"),
                               (expired, 410, "链接已过期")):
        if method == "get":
            response = await verify_app.client.get(path)
        else:
            response = await verify_app.submit(path)
        assert response.status_code == status, path
        assert text in response.text
    assert await verify_app.verifications() == []
    assert await verify_app.steps() == []
    assert verify_app.stored_files() == []


async def test_a_link_for_an_unknown_member_is_404(verify_app: VerifyApp) -> None:
    from app.verify.links import links_for

    token = links_for(verify_app.running.runtime.settings).token("wm_never_added")
    response = await verify_app.client.get(f"/verify/{token}")
    assert response.status_code == 404
    assert "找不到您的添加记录" in response.text
    assert await verify_app.steps() == []


@pytest.mark.parametrize("phone", ["", "1380013800", "138001380001", "12800138000",
                                   "+1 415 555 0100", "1380013800x", "010-12345678"])
async def test_wrong_phone_keeps_what_was_typed(verify_app: VerifyApp, phone: str) -> None:
    _, path = await verify_app.member()
    response = await verify_app.submit(path, phone=phone, identity_type="online_shop",
                                       region="浙江")
    assert response.status_code == 422
    assert "请填写 11 位中国大陆手机号" in response.text
    assert 'value="online_shop" required\n      checked' in response.text
    assert '<option value="浙江" selected>' in response.text
    if phone:
        assert f'value="{phone}"' in response.text
    assert await verify_app.verifications() == []
    assert verify_app.stored_files() == []


async def test_typed_values_are_escaped_when_shown_again(verify_app: VerifyApp) -> None:
    _, path = await verify_app.member()
    response = await verify_app.submit(path, phone='"><script>x</script>')
    assert response.status_code == 422
    assert "<script>x" not in response.text
    assert "&#34;&gt;&lt;script&gt;x" in response.text


@pytest.mark.parametrize(("photos", "text"), [
    ([("shop.jpg", b"GIF89a" + b"\x00" * 100)], "照片格式无法识别"),
    ([("shop.jpg", b"%PDF-1.7 not an image")], "照片格式无法识别"),
    ([("shop.jpg", JPEG[:3] + b"\x00" * MAX_BYTES)], "单张照片不能超过 0.1 MB"),
    ([], "请至少上传 1 张"),
    ([("a.jpg", JPEG), ("b.jpg", JPEG), ("c.jpg", JPEG), ("d.jpg", JPEG)], "最多上传 3 张"),
], ids=["gif", "pdf", "oversized", "none", "four"])
async def test_bad_photos_are_refused_and_nothing_is_stored(
        verify_app: VerifyApp, photos: list[tuple[str, bytes]], text: str) -> None:
    member, path = await verify_app.member()
    response = await verify_app.submit(path, photos=photos)
    assert response.status_code == 422
    assert text in response.text
    assert 'value="13800138000"' in response.text
    assert await verify_app.verifications() == []
    assert verify_app.stored_files() == []
    assert (await verify_app.fresh_member(member.id)).status == "added"


async def test_a_photo_of_exactly_the_limit_is_accepted(verify_app: VerifyApp) -> None:
    _, path = await verify_app.member()
    exactly = PNG[:8] + b"\x00" * (MAX_BYTES - 8)
    response = await verify_app.submit(path, photos=[("a.png", exactly)])
    assert response.status_code == 200
    assert len(await verify_app.verifications()) == 1


async def test_a_body_far_over_the_limits_is_refused_before_parsing(verify_app: VerifyApp) -> None:
    _, path = await verify_app.member()
    response = await verify_app.submit(path, photos=[("a.jpg", JPEG[:3] + b"\x00" * MAX_BYTES * 4)])
    assert response.status_code == 413
    assert "上传的内容过大" in response.text
    async def body():  # type: ignore[no-untyped-def]
        yield b"phone=13800138000"

    chunked = await verify_app.client.post(path, content=body(),
                                           headers={"content-type": "multipart/form-data"})
    assert chunked.status_code == 411
    assert await verify_app.verifications() == []


async def test_a_consumer_is_turned_away_politely_and_recorded(verify_app: VerifyApp) -> None:
    member, path = await verify_app.member()
    response = await verify_app.submit(path, identity_type="consumer", photos=[])
    assert response.status_code == 200
    assert "仅面向商家开放" in response.text
    [row] = await verify_app.verifications()
    assert (row.status, row.reviewer, row.photos) == ("rejected", "auto", [])
    assert row.reason == "消费者（非商家），按规则不入群"
    assert (await verify_app.fresh_member(member.id)).status == "rejected"
    assert ("status", "rejected", "review:auto") in await verify_app.history(member.id)
    assert await verify_app.steps() == [steps.SUBMITTED, steps.REJECTED]
    again = await verify_app.client.get(path)
    assert "仅面向商家开放" in again.text


async def test_double_submission_answers_with_the_pending_status(verify_app: VerifyApp) -> None:
    _, path = await verify_app.member()
    first = await verify_app.submit(path)
    second = await verify_app.submit(path, phone="13900139000", photos=[("b.png", PNG)])
    assert first.status_code == second.status_code == 200
    assert "正在审核中" in second.text
    [row] = await verify_app.verifications()
    assert row.phone == "13800138000"
    assert [p.name for p in verify_app.stored_files()] == row.photos  # the second's are gone
    assert await verify_app.steps() == [steps.SUBMITTED]
    assert "正在审核中" in (await verify_app.client.get(path)).text


async def test_simultaneous_submissions_store_one_row(verify_app: VerifyApp) -> None:
    import asyncio

    _, path = await verify_app.member()
    answers = await asyncio.gather(*(verify_app.submit(path, phone=f"1380013800{n}")
                                     for n in range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    assert all("正在审核中" in a.text for a in answers)
    [row] = await verify_app.verifications()
    assert [p.name for p in verify_app.stored_files()] == row.photos
    assert await verify_app.steps() == [steps.SUBMITTED]


async def test_a_member_a_reviewer_rejected_may_correct_and_submit_again(
        verify_app: VerifyApp) -> None:
    member, path = await verify_app.member()
    for attempt in range(3):  # max_submissions in sop_flows/verify.yaml
        assert (await verify_app.submit(path, phone=f"1380013800{attempt}")).status_code == 200
        [row] = [r for r in await verify_app.verifications() if r.status == "pending"]
        decided = await verify_app.client.post(
            f"/api/reviews/{row.id}/reject", json={"reviewer": "alice", "reason": "照片看不清"},
            headers=AUTH)
        assert decided.status_code == 200
        page = (await verify_app.client.get(path)).text
        if attempt < 2:  # the reason above the form again
            assert "上次提交的认证未通过。原因：照片看不清" in page and "<form" in page
    assert "<form" not in page and "原因：照片看不清" in page  # the third rejection is final
    rows = await verify_app.verifications()
    assert [(r.phone, r.status) for r in rows] == [
        ("13800138000", "rejected"), ("13800138001", "rejected"), ("13800138002", "rejected")]
    refused = await verify_app.submit(path, phone="13800138009")
    assert "原因：照片看不清" in refused.text and len(await verify_app.verifications()) == 3
    assert (await verify_app.fresh_member(member.id)).phone == "13800138002"
    assert await verify_app.steps() == [steps.SUBMITTED, steps.REJECTED]  # members, once each
