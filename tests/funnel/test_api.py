"""POST /api/funnel/events: the app's steps, validated whole, stored once per event_id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.funnel.models import FunnelEvent
from tests.conftest import API_KEY, RunningApp, make_settings, serve_app

PATH = "/api/funnel/events"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
AT = "2026-11-30T08:15:00+08:00"


def event(event_id: str, step: str = "click", **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "step": step, "at": AT, **fields}


async def stored_events(app: RunningApp) -> list[FunnelEvent]:
    async with app.runtime.db.reader() as session:
        return list(await session.scalars(select(FunnelEvent).order_by(FunnelEvent.event_key)))


async def count(app: RunningApp) -> int:
    async with app.runtime.db.reader() as session:
        return await session.scalar(select(func.count()).select_from(FunnelEvent)) or 0


async def post(app: RunningApp, *events: dict[str, Any]) -> Any:
    return await app.client.post(PATH, json={"events": list(events)}, headers=AUTH)


async def test_events_are_stored_once_and_repeats_counted_as_duplicates(db_url: str) -> None:
    async with serve_app(make_settings(db_url)) as app:
        first = await post(app, event("e1", "targeted", platform_user_id="u1"),
                           event("e2", "impression", platform_user_id="u1", channel="app",
                                 slot="home_banner"),
                           event("e3", "landing", channel="douyin"))
        assert first.status_code == 200, first.text
        assert first.json() == {"stored": 3, "duplicates": 0}
        again = await post(app, event("e1", "targeted", platform_user_id="u1"),
                           event("e4"), event("e4"))
        assert again.json() == {"stored": 1, "duplicates": 2}
        rows = await stored_events(app)
    assert [row.event_key for row in rows] == ["app:e1", "app:e2", "app:e3", "app:e4"]
    e2 = rows[1]
    assert (e2.step, e2.platform_user_id, e2.channel, e2.slot, e2.member_id) == (
        "impression", "u1", "app", "home_banner", None)
    assert e2.at.isoformat() == "2026-11-30T00:15:00+00:00"  # stored in UTC


async def test_invalid_events_reject_the_whole_batch(db_url: str) -> None:
    async with serve_app(make_settings(db_url)) as app:
        unknown_step = await post(app, event("ok1"), event("bad", "friend_added"))
        assert unknown_step.status_code == 422
        assert "step 'friend_added' is not one the app reports" in unknown_step.text
        bad_slot = await post(app, event("ok2"), event("bad", channel="app", slot="sidebar"))
        assert bad_slot.status_code == 422
        (problem,) = bad_slot.json()["detail"]
        assert problem["loc"] == ["body", "events", 1, "slot"]
        assert problem["msg"].startswith("channel 'app' has no slot 'sidebar'")
        unknown_channel = await post(app, event("bad", channel="tiktok"))
        assert "unknown channel 'tiktok'" in unknown_channel.json()["detail"][0]["msg"]
        orphan_slot = await post(app, event("bad", slot="home_banner"))
        assert orphan_slot.json()["detail"][0]["msg"] == "a slot needs its channel"
        naive = await post(app, {**event("bad"), "at": "2026-11-30T08:15:00"})
        assert naive.status_code == 422 and "timezone" in naive.text
        too_many = await post(app, *[event(f"n{i}") for i in range(501)])
        assert too_many.status_code == 422 and "500" in too_many.text
        long_id = await post(app, event("x" * 65))
        assert long_id.status_code == 422
        for response in (unknown_channel, orphan_slot):
            assert response.status_code == 422
        assert await count(app) == 0  # the valid events of the rejected batches too


async def test_api_key_is_required(db_url: str) -> None:
    async with serve_app(make_settings(db_url)) as app:
        body = {"events": [event("k1")]}
        missing = await app.client.post(PATH, json=body)
        wrong = await app.client.post(PATH, json=body, headers={"Authorization": "Bearer nope"})
        assert (missing.status_code, wrong.status_code) == (401, 401)
        assert await count(app) == 0


async def test_api_is_off_without_a_configured_key(db_url: str) -> None:
    async with serve_app(make_settings(db_url, api_key=None)) as app:
        response = await app.client.post(PATH, json={"events": [event("k1")]}, headers=AUTH)
        assert response.status_code == 503
        assert "SOPBOT_API_KEY" in response.text
        assert await count(app) == 0
