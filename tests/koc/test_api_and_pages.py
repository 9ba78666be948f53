"""GET /api/koc (the API key, recommenders paged by cursor in id order, candidates on the first
page only) and the recommender's H5 pages: their own page behind a signed link (forged 403,
expired 410, no recommender 404; referees never by phone), and the public share page (its QR
code only; unknown 404, removed 410), with the verification page's security headers. The real
app under uvicorn, data made by the domain."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from app.engine.db import Database
from app.faces.web.verify.pages import SECURITY_HEADERS
from app.groups.models import GroupMember
from app.koc import referrals
from app.koc.links import koc_links
from app.koc.models import CODE_REMOVED, Recommender
from app.members.models import Member
from app.verify.links import links_for
from tests.conftest import API_KEY, RunningApp, make_settings, serve_app
from tests.koc.people import T0, koc, member, recommender

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
async def app(db_url: str) -> AsyncIterator[RunningApp]:
    async with serve_app(make_settings(db_url), run_worker=False) as running:
        yield running


async def credited(db: Database, rec: Recommender, phones: list[str]) -> list[Member]:
    """Friends of `rec` with these phones, credited by the settle job."""
    friends = [await member(db, phone=phone) for phone in phones]
    for friend in friends:
        async with db.unit_of_work() as session:
            row = await session.get(Member, friend.id)
            assert row is not None
            await referrals.touch(session, row, koc().state_of(rec.short_id), T0, koc(),
                                  new_member=True)
    async with db.unit_of_work() as session:
        await referrals.settle(session, T0 + timedelta(hours=1), koc())
    return friends


async def test_the_api_pages_recommenders_and_gives_candidates_first(app: RunningApp) -> None:
    db = app.runtime.db
    star = await recommender(db)
    await credited(db, star, ["13511112222", "13622223333", "13733334444"])
    others = [await recommender(db), await recommender(db)]
    assert (await app.client.get("/api/koc")).status_code == 401
    first = await app.client.get("/api/koc", params={"limit": 2}, headers=AUTH)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [r["member_id"] for r in body["recommenders"]] == [star.member_id,
                                                               others[0].member_id]
    top = body["recommenders"][0]
    assert (top["referred"], top["credited"]) == (3, 3)
    assert top["rewards"] == [{"tier": "bronze", "kind": "tier", "period": None,
                               "status": "earned"}]
    assert top["external_userid"].startswith("wm")
    assert body["candidates"] == [{"external_userid": top["external_userid"], "score": 9,
                                   "reasons": {"referrals": 3}}]
    assert body["next_cursor"] == str(others[0].id)
    last = (await app.client.get("/api/koc", params={"cursor": body["next_cursor"]},
                                 headers=AUTH)).json()
    assert [r["member_id"] for r in last["recommenders"]] == [others[1].member_id]
    assert last["candidates"] == [] and last["next_cursor"] is None
    for bad in ({"cursor": "abc"}, {"cursor": "9" * 20}, {"limit": 0}, {"limit": 501}):
        assert (await app.client.get("/api/koc", params=bad, headers=AUTH)).status_code == 422


def assert_member_headers(response) -> None:  # type: ignore[no-untyped-def]
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name
    assert response.headers["cache-control"] == "no-store"


async def test_a_recommender_s_own_page(app: RunningApp) -> None:
    db, links = app.runtime.db, koc_links(app.runtime.settings)
    owner = await member(db)
    rec = await recommender(db, owner)
    friends = await credited(db, rec, ["13511112222", "13622223333"])
    async with db.unit_of_work() as session:
        session.add(GroupMember(chat_id="wrNorth", userid=friends[0].external_userid,
                                nickname="张老板", joined_at=T0))
    page = await app.client.get(f"/koc/me/{links.token(owner.external_userid)}")
    assert page.status_code == 200, page.text
    assert_member_headers(page)
    assert "已成功推荐 2 位同行" in page.text
    assert "再成功推荐 1 位，即可获得「50 元进货券」" in page.text
    assert links.share_url(rec.short_id) in page.text and 'src="https://qr"' in page.text
    assert "张**：<strong>已计入" in page.text and "同行好友：<strong>已计入" in page.text
    for friend in friends:  # never a phone, an id or a full name
        assert friend.phone not in page.text and friend.external_userid not in page.text
    assert "张老板" not in page.text and owner.phone not in page.text
    assert "还没有奖励" in page.text

    await credited(db, rec, ["13744445555"])  # the third: bronze earned
    again = await app.client.get(f"/koc/me/{links.token(owner.external_userid)}")
    assert 'data-reward="earned">50 元进货券：<strong>审核中' in again.text
    assert "再成功推荐 7 位，即可获得「200 元进货券」" in again.text


async def test_a_link_that_is_not_theirs_opens_nothing(app: RunningApp,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    db, links = app.runtime.db, koc_links(app.runtime.settings)
    owner, plain = await member(db), await member(db)
    await recommender(db, owner)
    forged = await app.client.get(f"/koc/me/{links.token(owner.external_userid)}x")
    assert forged.status_code == 403 and "链接无效" in forged.text
    assert_member_headers(forged)
    other_kind = links_for(app.runtime.settings).token(owner.external_userid)  # verify's link
    assert (await app.client.get(f"/koc/me/{other_kind}")).status_code == 403
    assert (await app.client.get(f"/koc/me/{'a' * 600}")).status_code == 403
    not_one = await app.client.get(f"/koc/me/{links.token(plain.external_userid)}")
    assert not_one.status_code == 404 and "您还不是推荐官" in not_one.text
    month_ago = time.time() - 31 * 86400
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: month_ago)
    old = links.token(owner.external_userid)
    monkeypatch.undo()
    expired = await app.client.get(f"/koc/me/{old}")
    assert expired.status_code == 410 and "链接已过期" in expired.text


async def test_the_share_page_shows_only_the_code(app: RunningApp) -> None:
    db = app.runtime.db
    owner = await member(db, phone="13811110001")
    rec = await recommender(db, owner)
    page = await app.client.get(f"/koc/r/{rec.short_id}")
    assert page.status_code == 200, page.text
    assert_member_headers(page)
    assert '<img src="https://qr"' in page.text and "邀请您加入同行交流群" in page.text
    assert owner.phone not in page.text and owner.external_userid not in page.text
    for unknown in ("zzzzzzzz", "BAD..id", "a" * 40):
        missing = await app.client.get(f"/koc/r/{unknown}")
        assert missing.status_code == 404 and "推荐码不存在" in missing.text
    async with db.unit_of_work() as session:
        await session.execute(update(Recommender).where(Recommender.id == rec.id).values(
            code=CODE_REMOVED, qr_code=None))
    removed = await app.client.get(f"/koc/r/{rec.short_id}")
    assert removed.status_code == 410 and "已失效" in removed.text
