"""Every member page carries the browser-side guards (CSP without scripts or inline styles, no
framing, no Referer, no sniffing); the stylesheet is sopbot's own file; and a POST another site
makes the member's browser send is refused (403) before its body is read, storing nothing."""

from __future__ import annotations

import json
import time

import pytest
from starlette.requests import Request

from app.engine.db import utcnow
from app.faces.web.verify.origin import cross_site, origin_of
from app.faces.web.verify.pages import STYLESHEET_URL
from app.groups.models import GroupPool
from app.members.models import Member
from app.verify.links import links_for
from app.verify.models import Verification
from tests.verify.conftest import JPEG, MAX_BYTES, VerifyApp
from tests.verify.test_form import _token_made_at

CROSS_SITE_TEXT = "认证信息只能在认证页面内提交"
QR = "https://wework.qpic.cn/wwpic/join_qr.png"


def assert_guarded(response) -> None:  # type: ignore[no-untyped-def]
    """The headers every /verify response carries."""
    csp = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives == {
        "default-src": "'none'", "script-src": "'none'", "style-src": "'self'",
        "img-src": "'self' data: https: http:", "form-action": "'self'",
        "frame-ancestors": "'none'", "base-uri": "'none'"}
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


def assert_guarded_page(response, status: int, text: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text[:200]
    assert text in response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert_guarded(response)
    page = response.text.lower()
    # The CSP would block these; the page must not need them.
    assert "<style" not in page and " style=" not in page and "<script" not in page
    assert f'<link rel="stylesheet" href="{STYLESHEET_URL}">' in response.text
    # An icon that costs no request: else every member's browser asks for /favicon.ico (404).
    assert '<link rel="icon" href="data:,">' in response.text


def form_post(verify_app: VerifyApp, path: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    data = {"phone": "13800138000", "identity_type": "physical_shop", "region": "广东"}
    files = [("photos", ("shop.jpg", JPEG, "image/jpeg"))]
    return verify_app.client.post(path, data=data, files=files, headers=headers)


async def rows_for(verify_app: VerifyApp, member: Member) -> list[Verification]:
    return [row for row in await verify_app.verifications() if row.member_id == member.id]


# --- the pages and their headers --------------------------------------------------------------

async def test_form_and_status_pages_are_guarded(verify_app: VerifyApp) -> None:
    _, path = await verify_app.member()
    assert_guarded_page(await verify_app.client.get(path), 200, "注册手机号")
    assert_guarded_page(await verify_app.submit(path), 200, "正在审核中")
    assert_guarded_page(await verify_app.client.get(path), 200, "正在审核中")


async def test_error_pages_are_guarded(verify_app: VerifyApp) -> None:
    await verify_app.member("wm_shop_1")
    _, good = await verify_app.member("wm_shop_2")
    forged = good[:-2] + "xx"
    expired = "/verify/" + _token_made_at("wm_shop_1", time.time() - 73 * 3600)
    unknown = "/verify/" + links_for(verify_app.running.runtime.settings).token("wm_nobody")
    assert_guarded_page(await verify_app.client.get(forged), 403, "链接无效")
    assert_guarded_page(await verify_app.submit(forged), 403, "链接无效")
    assert_guarded_page(await verify_app.client.get(expired), 410, "链接已过期")
    assert_guarded_page(await verify_app.client.get(unknown), 404, "找不到您的添加记录")
    assert_guarded_page(await verify_app.submit(good, phone="12"), 422, "11 位中国大陆手机号")

    async def chunks():  # type: ignore[no-untyped-def]
        yield b"phone=13800138000"
    chunked = await verify_app.client.post(good, content=chunks(),
                                           headers={"content-type": "multipart/form-data"})
    assert_guarded_page(chunked, 411, "上传的内容过大")
    huge = b"x" * (3 * MAX_BYTES + 64 * 1024 + 1)
    too_big = await verify_app.client.post(
        good, content=huge, headers={"content-type": "multipart/form-data; boundary=b"})
    assert_guarded_page(too_big, 413, "上传的内容过大")
    assert await verify_app.verifications() == []


async def test_too_many_file_parts_get_a_guarded_page_not_a_bare_400(
        verify_app: VerifyApp) -> None:
    _, path = await verify_app.member()
    photos = [(f"{i}.jpg", JPEG[:12]) for i in range(20)]
    response = await verify_app.submit(path, photos=photos)
    assert_guarded_page(response, 400, "上传的内容过大")
    assert await verify_app.verifications() == []


async def test_the_join_code_page_is_guarded_and_shows_the_remote_qr(
        verify_app: VerifyApp) -> None:
    member, path = await verify_app.member()
    async with verify_app.running.runtime.db.unit_of_work() as session:
        stored = await session.get(Member, member.id)
        assert stored is not None
        stored.segment = "shop_south"
        session.add(Verification(member_id=member.id, phone="13800138000",
                                 identity_type="physical_shop", region="广东", photos=[],
                                 status="approved", decided_at=utcnow()))
        session.add(GroupPool(segment="shop_south", config_id="cfg1", qr_code=QR,
                              chat_ids=json.dumps(["wrc_1"]), room_name="南区"))
    response = await verify_app.client.get(path)
    assert_guarded_page(response, 200, "长按识别")
    assert f'src="{QR}"' in response.text  # an https image: img-src allows it


async def test_the_stylesheet_is_served_as_css(verify_app: VerifyApp) -> None:
    response = await verify_app.client.get(STYLESHEET_URL)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "box-sizing" in response.text and ".status.approved" in response.text
    assert_guarded(response)
    plain = await verify_app.client.get(STYLESHEET_URL.split("?")[0])
    assert plain.status_code == 200 and plain.content == response.content


# --- cross-site POSTs -------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "http://127.0.0.1.evil.example"},
    {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
    {"Origin": "null"},
], ids=["fetch-cross-site", "fetch-same-site", "origin-evil", "origin-lookalike",
        "null-origin-cross-site", "null-origin-unvouched"])
async def test_a_cross_site_post_is_refused_and_stores_nothing(
        verify_app: VerifyApp, headers: dict[str, str]) -> None:
    member, path = await verify_app.member()
    response = await form_post(verify_app, path, headers)
    assert_guarded_page(response, 403, CROSS_SITE_TEXT)
    assert await verify_app.verifications() == []
    assert verify_app.stored_files() == []
    assert (await verify_app.fresh_member(member.id)).status == "added"


async def test_a_cross_site_post_is_refused_before_its_body_is_read(
        verify_app: VerifyApp) -> None:
    _, path = await verify_app.member()
    # Far over the size limit and not multipart at all: read, it would be a 413.
    huge = b"x" * (3 * MAX_BYTES + 64 * 1024 + 1)
    response = await verify_app.client.post(path, content=huge,
                                            headers={"Origin": "https://evil.example"})
    assert_guarded_page(response, 403, CROSS_SITE_TEXT)


@pytest.mark.parametrize("kind", ["same-origin", "headerless", "null-origin", "typed-url"])
async def test_own_and_headerless_posts_are_accepted(verify_app: VerifyApp, kind: str) -> None:
    own = verify_app.running.base_url
    headers = {
        "same-origin": {"Origin": own, "Sec-Fetch-Site": "same-origin"},
        "headerless": {},  # old WeChat browsers send neither header: the link decides
        # An Origin: null the browser's own Sec-Fetch-Site vouches for.
        "null-origin": {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
        "typed-url": {"Sec-Fetch-Site": "none"},
    }[kind]
    member, path = await verify_app.member()
    response = await form_post(verify_app, path, headers)
    assert_guarded_page(response, 200, "正在审核中")
    [row] = await rows_for(verify_app, member)
    assert row.status == "pending"


# --- the origin rule itself -------------------------------------------------------------------

PUBLIC_URL = "https://sop.example.com/"


def request_with(headers: dict[str, str], host: str = "10.0.0.5:8000") -> Request:
    raw = [(b"host", host.encode())] + [(k.lower().encode(), v.encode())
                                        for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "scheme": "http", "path": "/verify/t",
                    "root_path": "", "query_string": b"", "headers": raw})


@pytest.mark.parametrize(("headers", "refused"), [
    ({}, False),
    ({"Origin": "https://sop.example.com"}, False),  # public_url, behind a TLS proxy
    ({"Origin": "https://SOP.example.com:443"}, False),
    ({"Origin": "http://10.0.0.5:8000"}, False),  # the request's own host
    ({"Origin": "null"}, True),  # a sandboxed frame or data: page, nothing vouching
    ({"Origin": "null", "Sec-Fetch-Site": "same-origin"}, False),
    ({"Sec-Fetch-Site": "same-origin", "Origin": "https://sop.example.com"}, False),
    ({"Sec-Fetch-Site": "none"}, False),
    ({"Origin": "https://sop.example.com:8443"}, True),
    ({"Origin": "http://sop.example.com"}, True),
    ({"Origin": "https://sop.example.com.evil.example"}, True),
    ({"Origin": "not a url"}, True),
    ({"Origin": "https://sop.example.com:99999"}, True),
    ({"Sec-Fetch-Site": "same-site", "Origin": "https://sop.example.com"}, True),
    ({"Sec-Fetch-Site": "cross-site"}, True),
])
def test_cross_site_rule(headers: dict[str, str], refused: bool) -> None:
    assert cross_site(request_with(headers), PUBLIC_URL) is refused


def test_origin_of_normalises() -> None:
    assert origin_of("HTTPS://Sop.Example.com:443/verify/x?y") == "https://sop.example.com"
    assert origin_of("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert origin_of("http://[::1]:80/") == "http://[::1]"
    assert origin_of("null") is None and origin_of("") is None
