"""A segment's pool with no group with room, from real encrypted change_external_chat callbacks
(WeCom is the transport fake): the operators get one app message and the newest group's owner
one task per episode (not one per join), /metrics shows the segment while it lasts, and the
group the owner opens ends the episode; the next one is told again."""

from __future__ import annotations

from app.groups.sync import sync_groups
from tests.conftest import OPERATOR, RunningApp, wait_until
from tests.e2e.test_metrics import samples
from tests.fakes.wecom import FakeWeCom
from tests.groups.test_groups import OWNER, ROUTING, chat, person

SEND = "message/send"
UPDATE = "externalcontact/groupchat/update_join_way"
GAUGE = ("sopbot_group_pool_empty", (("segment", "online_douyin"),))
IDEAL = ROUTING.segments["online_douyin"].ideal_size  # 抖音网店群: 120


def customers(first: int, count: int) -> list[str]:
    return [f"wm{n:04d}" for n in range(first, first + count)]


async def told(app: RunningApp, fake: FakeWeCom, count: int) -> list[dict[str, object]]:
    """The app messages sent once the app is idle; exactly `count` of them."""
    await wait_until(lambda: _at_least(fake, count), 10)
    await app.idle()
    sent = [call.body for call in fake.calls_to(SEND)]
    assert len(sent) == count, sent
    return sent


async def _at_least(fake: FakeWeCom, count: int) -> bool:
    return len(fake.calls_to(SEND)) >= count


async def empty_gauge(app: RunningApp) -> float | None:
    return samples((await app.client.get("/metrics")).text).get(GAUGE)


async def test_an_empty_pool_tells_the_operators_and_the_owner_once_per_episode(
        running: tuple[RunningApp, FakeWeCom]) -> None:
    app, fake = running
    fake.add_group_chat("wrD1", owner="zhangsan", name="抖音网店交流群1", member_version="v1",
                        member_list=[OWNER, *map(person, customers(1, IDEAL - 2))])
    report = await sync_groups(app.runtime.db, app.runtime.wecom, ROUTING, ["zhangsan"])
    assert report.failed == 0
    assert await empty_gauge(app) is None  # wrD1 has room for one more

    # The 120th member fills it: nothing else has room, so new members would keep filling it.
    await app.post_callback(chat(chat_id="wrD1", mem_change_list=customers(IDEAL - 1, 1),
                                 last_mem_ver="v1", cur_mem_ver="v2"))
    operators, owner = sorted(await told(app, fake, 2), key=lambda b: b["touser"] != OPERATOR)
    assert operators["touser"] == OPERATOR and owner["touser"] == "zhangsan"
    text = operators["text"]["content"]  # type: ignore[index]
    assert "「抖音网店群」" in text and f"「抖音网店交流群1」（{IDEAL}/{IDEAL} 人）" in text
    task = owner["text"]["content"]  # type: ignore[index]
    assert "新建客户群" in task and "「抖音网店交流群2」" in task
    assert await empty_gauge(app) == 1

    # More joins during the episode tell nobody again.
    for n, version in ((IDEAL, "v3"), (IDEAL + 1, "v4")):
        await app.post_callback(chat(chat_id="wrD1", mem_change_list=customers(n, 1),
                                     last_mem_ver=f"v{int(version[1]) - 1}",
                                     cur_mem_ver=version))
    await told(app, fake, 2)

    # The owner opens the next group: it is read, goes behind the code, the episode ends.
    fake.add_group_chat("wrD2", owner="zhangsan", name="抖音网店交流群2", member_version="v1",
                        member_list=[OWNER])
    await app.post_callback(chat("create", chat_id="wrD2"))

    async def rotated() -> bool:
        return any(call.body["chat_id_list"] == ["wrD2"] for call in fake.calls_to(UPDATE))
    await wait_until(rotated, 10)
    await app.idle()
    assert await empty_gauge(app) is None

    # It fills in turn: a new episode, told again, naming the group after it.
    await app.post_callback(chat(chat_id="wrD2", mem_change_list=customers(500, IDEAL - 1),
                                 last_mem_ver="v1", cur_mem_ver="v2"))
    later = (await told(app, fake, 4))[2:]
    assert sorted(b["touser"] for b in later) == sorted([OPERATOR, "zhangsan"])
    assert all("抖音网店交流群3" in b["text"]["content"] for b in later)  # type: ignore[index]
    assert await empty_gauge(app) == 1


async def test_a_group_read_from_wecom_that_fills_the_last_room_tells_them_too(
        running: tuple[RunningApp, FakeWeCom]) -> None:
    """The same episode found by reading the group through the outbox (an event showed a
    missed member-list version), not by a join's callback: the read that fills the pool's
    last group tells (an update of the join way, which changes no group's size, does not)."""
    app, fake = running
    group = fake.add_group_chat("wrD1", owner="zhangsan", name="抖音网店交流群1",
                                member_version="v1",
                                member_list=[OWNER, *map(person, customers(1, IDEAL - 2))])
    await sync_groups(app.runtime.db, app.runtime.wecom, ROUTING, ["zhangsan"])
    await app.idle()
    assert not fake.calls_to(SEND)
    # Two joined whose callbacks never came; a later event's version shows it was missed.
    group["member_list"] += [person(c) for c in customers(IDEAL - 1, 2)]
    group["member_version"] = "v3"
    await app.post_callback(chat(chat_id="wrD1", update_detail="del_member",
                                 mem_change_list=["wmGhost"], quit_scene=0,
                                 last_mem_ver="v2", cur_mem_ver="v3"))
    operators, owner = sorted(await told(app, fake, 2), key=lambda b: b["touser"] != OPERATOR)
    assert "「抖音网店交流群2」" in owner["text"]["content"]  # type: ignore[index]
    assert await empty_gauge(app) == 1
