"""The review API: queue, approve, reject, unknown ids, stale decisions, the API key."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from app.funnel import steps
from app.verify.models import Verification
from tests.verify.conftest import AUTH, JPEG, VerifyApp

pytestmark = pytest.mark.asyncio


async def _pending(verify_app: VerifyApp, external_userid: str = "wm_shop_1",
                   ) -> tuple[int, int, str]:
    """(review id, member id, the member's page) for a fresh pending submission."""
    member, path = await verify_app.member(external_userid)
    assert (await verify_app.submit(path, photos=[("shop.jpg", JPEG)])).status_code == 200
    rows = [r for r in await verify_app.verifications() if r.member_id == member.id]
    return rows[0].id, member.id, path


async def test_the_queue_lists_pending_submissions_with_their_photos(
        verify_app: VerifyApp) -> None:
    first, _, _ = await _pending(verify_app, "wm_shop_1")
    second, _, _ = await _pending(verify_app, "wm_shop_2")
    client = verify_app.client
    await client.post(f"/api/reviews/{first}/approve", json={"reviewer": "alice"}, headers=AUTH)
    pending = (await client.get("/api/reviews", params={"status": "pending"}, headers=AUTH))
    assert pending.status_code == 200
    assert [r["id"] for r in pending.json()] == [second]
    item = pending.json()[0]
    assert (item["external_userid"], item["phone"], item["identity_type"], item["region"]) == (
        "wm_shop_2", "13800138000", "physical_shop", "广东")
    photo = await client.get(item["photos"][0], headers=AUTH)
    assert photo.status_code == 200
    assert (photo.content, photo.headers["content-type"]) == (JPEG, "image/jpeg")
    approved = await client.get("/api/reviews", params={"status": "approved"}, headers=AUTH)
    assert [r["id"] for r in approved.json()] == [first]
    everything = await client.get("/api/reviews", params={"status": "all"}, headers=AUTH)
    assert [r["id"] for r in everything.json()] == [first, second]
    page = await client.get("/api/reviews", params={"status": "all", "after_id": first,
                                                    "limit": 1}, headers=AUTH)
    assert [r["id"] for r in page.json()] == [second]
    one = await client.get(f"/api/reviews/{second}", headers=AUTH)
    assert one.json() == item


async def test_approve_updates_member_funnel_and_status_page(verify_app: VerifyApp) -> None:
    review, member_id, path = await _pending(verify_app)
    response = await verify_app.client.post(f"/api/reviews/{review}/approve",
                                            json={"reviewer": "alice"}, headers=AUTH)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["reviewer"]) == ("approved", "alice")
    assert response.json()["decided_at"] is not None
    # Approved by alice, then routed in the same unit of work (physical shop in 广东).
    assert (await verify_app.fresh_member(member_id)).segment == "shop_south"
    history = await verify_app.history(member_id)
    assert ("status", "approved", "review:alice") in history
    assert ("status", "routed", "routing") in history
    assert await verify_app.steps() == [steps.SUBMITTED, steps.APPROVED, steps.ROUTED]
    page = await verify_app.client.get(path)
    assert "认证通过" in page.text


async def test_reject_needs_a_reason_and_the_member_sees_it(verify_app: VerifyApp) -> None:
    review, member_id, path = await _pending(verify_app)
    client = verify_app.client
    for body in ({"reviewer": "bob"}, {"reviewer": "bob", "reason": ""}):
        missing = await client.post(f"/api/reviews/{review}/reject", json=body, headers=AUTH)
        assert missing.status_code == 422
    assert (await verify_app.verifications())[0].status == "pending"
    response = await client.post(f"/api/reviews/{review}/reject",
                                 json={"reviewer": "bob", "reason": "照片看不清门头"},
                                 headers=AUTH)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["reason"]) == ("rejected", "照片看不清门头")
    assert (await verify_app.fresh_member(member_id)).status == "rejected"
    assert ("status", "rejected", "review:bob") in await verify_app.history(member_id)
    assert await verify_app.steps() == [steps.SUBMITTED, steps.REJECTED]
    page = await client.get(path)
    assert "未通过" in page.text and "照片看不清门头" in page.text


async def test_unknown_review_is_404(verify_app: VerifyApp) -> None:
    client = verify_app.client
    assert (await client.get("/api/reviews/999", headers=AUTH)).status_code == 404
    for action, body in (("approve", {"reviewer": "a"}), ("reject", {"reviewer": "a",
                                                                     "reason": "x"})):
        response = await client.post(f"/api/reviews/999/{action}", json=body, headers=AUTH)
        assert response.status_code == 404
    assert (await client.get("/api/reviews/999/photos/0", headers=AUTH)).status_code == 404
    # An id no table can hold is refused before it reaches the database.
    for path in (f"/api/reviews/{2**63}", f"/api/reviews/{2**63}/photos/0"):
        assert (await client.get(path, headers=AUTH)).status_code == 422
    beyond = await client.post(f"/api/reviews/{2**63}/approve", json={"reviewer": "a"},
                               headers=AUTH)
    assert beyond.status_code == 422


async def test_a_photo_is_served_only_from_the_photo_directory(verify_app: VerifyApp) -> None:
    """The names come from the database: one naming a file out of photo_dir (a relative path,
    an absolute one, a link) is a 404, never that file; so is a file gone from the disk."""
    review, _, _ = await _pending(verify_app)
    [stored] = verify_app.stored_files()
    outside = verify_app.photo_dir.parent / "secret.jpg"
    outside.write_bytes(JPEG)
    (verify_app.photo_dir / "link.jpg").symlink_to(outside)
    names = [stored.name, "../secret.jpg", str(outside), "link.jpg", "gone.jpg"]
    async with verify_app.running.runtime.db.unit_of_work() as session:
        await session.execute(update(Verification).where(Verification.id == review)
                              .values(photos=names))
    for n, expected in enumerate((200, 404, 404, 404, 404)):
        photo = await verify_app.client.get(f"/api/reviews/{review}/photos/{n}", headers=AUTH)
        assert photo.status_code == expected, names[n]
        assert (photo.content == JPEG) == (expected == 200)


async def test_a_second_decision_is_409_and_changes_nothing(verify_app: VerifyApp) -> None:
    review, member_id, _ = await _pending(verify_app)
    client = verify_app.client
    first = await client.post(f"/api/reviews/{review}/approve", json={"reviewer": "alice"},
                              headers=AUTH)
    assert first.status_code == 200
    for action, body in (("reject", {"reviewer": "bob", "reason": "late"}),
                         ("approve", {"reviewer": "bob"})):
        stale = await client.post(f"/api/reviews/{review}/{action}", json=body, headers=AUTH)
        assert stale.status_code == 409
        assert "already approved by alice" in stale.json()["detail"]
    [row] = await verify_app.verifications()
    assert (row.status, row.reviewer, row.reason) == ("approved", "alice", None)
    assert (await verify_app.fresh_member(member_id)).status == "routed"
    assert await verify_app.steps() == [steps.SUBMITTED, steps.APPROVED, steps.ROUTED]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key-0123456789"},
                                     {"Authorization": "Basic dGVzdA=="}],
                         ids=["missing", "wrong", "scheme"])
async def test_the_api_key_is_required(verify_app: VerifyApp, headers: dict[str, str]) -> None:
    review, _, _ = await _pending(verify_app)
    client = verify_app.client
    calls = [client.get("/api/reviews", headers=headers),
             client.get(f"/api/reviews/{review}", headers=headers),
             client.get(f"/api/reviews/{review}/photos/0", headers=headers),
             client.post(f"/api/reviews/{review}/approve", json={"reviewer": "x"},
                         headers=headers),
             client.post("/api/platform-users", json=[], headers=headers)]
    for call in calls:
        assert (await call).status_code == 401
    assert (await verify_app.verifications())[0].status == "pending"
