"""The whole acquisition funnel against the simulator, through real encrypted callbacks: an ad
click in the app, a friend add, the welcome with the verification link, the H5 form (a real
multipart upload), review, routing into the segment's group pool, and the member scanning the
pool's 加入群聊 code. The funnel report shows each step once."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.funnel import steps
from app.funnel.models import FunnelEvent
from app.funnel.report import funnel_report
from app.groups.models import CustomerGroup, GroupPool
from app.groups.sync import sync_groups
from app.members.models import JOINED, Member
from tests.conftest import (
    API_KEY,
    REPO,
    RunningApp,
    make_settings,
    rows_of,
    serve_app,
    wait_until,
)
from tests.e2e.sim_server import AES_KEY, CORP_ID, SECRET, TOKEN, RunningSim, running_sim
from tests.verify.conftest import JPEG

STAFF = ["zhangsan", "lisi"]
WELCOME = "externalcontact/send_welcome_msg"
SOUTH = "实体店南方交流群"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@dataclass
class Funnel:
    sim: RunningSim
    app: RunningApp

    async def rows(self, model: type) -> list[Any]:  # type: ignore[type-arg]
        return await rows_of(self.app.runtime.db, model)

    async def group_named(self, name: str) -> CustomerGroup | None:
        return next((g for g in await self.rows(CustomerGroup) if g.name == name), None)

    async def sync(self) -> list[str]:
        runtime = self.app.runtime
        report = await sync_groups(runtime.db, runtime.wecom, runtime.flows.routing, STAFF)
        return report.lines

    async def settled(self, check: Any, timeout: float = 10) -> None:
        await wait_until(check, timeout)
        await self.app.idle()

    async def new_group(self, name: str) -> str:
        """A staff member makes a customer group in the client; sopbot reads it (segment)."""
        made = await self.sim.scenario("group_create", owner="zhangsan", name=name)
        chat_id = made["chat_id"]

        async def known() -> bool:
            group = await self.group_named(name)
            return group is not None and group.segment is not None
        await self.settled(known)
        return chat_id

    async def pool(self, segment: str) -> GroupPool:
        [pool] = [p for p in await self.rows(GroupPool) if p.segment == segment]
        return pool


@asynccontextmanager
async def funnel(db_url: str, tmp_path: Path, ideal_size: int = 150) -> AsyncIterator[Funnel]:
    flows = tmp_path / "sop_flows"
    shutil.copytree(REPO / "sop_flows", flows)
    routing = flows / "routing.yaml"
    south = "ideal_size: {}\n    room_name: 实体店南方"
    routing.write_text(routing.read_text(encoding="utf-8").replace(
        south.format(150), south.format(ideal_size)), encoding="utf-8")
    async with running_sim(SOPBOT_SIM_MEMBERS="zhangsan,lisi") as sim:
        settings = make_settings(db_url, corp_id=CORP_ID, callback_token=TOKEN,
                                 callback_aes_key=AES_KEY, agent_secret=SECRET,
                                 api_base=sim.base_url, outbox_retry_base_s=0.05,
                                 flows_path=flows, photo_dir=tmp_path / "photos")
        async with serve_app(settings, simulator=True) as app:
            sim.sim.callbacks.bot_url = f"{app.base_url}/wecom/callback"
            yield Funnel(sim, app)


async def test_an_ad_click_ends_in_the_right_group_with_every_step_counted_once(
        db_url: str, tmp_path: Path) -> None:
    async with funnel(db_url, tmp_path) as f:
        south = await f.new_group(f"{SOUTH}1")
        assert any(line.startswith("shop_south") and "created" in line for line in await f.sync())
        pool = await f.pool("shop_south")
        way = f.sim.sim.world.join_ways[pool.config_id]
        assert pool.chat_ids == f'["{south}"]' and way["chat_id_list"] == [south]
        assert pool.qr_code and pool.qr_code == way["qr_code"]  # the code WeCom made for it

        # The app reports the ad click; the shop owner adds the staff member from that slot.
        click = {"event_id": "click-1", "step": "click", "at": "2026-11-30T08:00:00+08:00",
                 "platform_user_id": "u1", "channel": "app", "slot": "home_banner"}
        answer = await f.app.client.post("/api/funnel/events", json={"events": [click]},
                                         headers=AUTH)
        assert answer.status_code == 200, answer.text
        added = await f.sim.scenario("friend_add", userid="zhangsan", state="app.home_banner")
        member_id = added["external_userid"]
        welcome = await _welcome_text(f)
        # WeCom delivering the same callback twice more welcomes and counts nothing new.
        plaintext = f.sim.sim.callbacks.records[-1]["plaintext"]
        for _ in range(2):
            params, body = f.sim.sim.callbacks.crypto.encrypt_callback(plaintext)
            answer = await f.app.client.post("/wecom/callback", params=params, content=body)
            assert answer.status_code == 200
        await f.app.idle()
        path = re.search(r"(/verify/\S+)", welcome).group(1)  # type: ignore[union-attr]

        # The H5 form: opened, then submitted with a photo; the review approves it.
        assert (await f.app.client.get(path)).status_code == 200
        files = [("photos", ("shop.jpg", JPEG, "image/jpeg"))]
        data = {"phone": "13800138000", "identity_type": "physical_shop", "region": "广东"}
        assert (await f.app.client.post(path, data=data, files=files)).status_code == 200
        [review] = (await f.app.client.get("/api/reviews", headers=AUTH)).json()
        decided = await f.app.client.post(f"/api/reviews/{review['id']}/approve",
                                          json={"reviewer": "op1"}, headers=AUTH)
        assert decided.status_code == 200, decided.text

        # Routed: the staff member is told which group and code; the H5 page shows the code.
        notice = await _staff_notice(f)
        assert f"当前入群：{SOUTH}1" in notice and pool.qr_code in notice
        page = (await f.app.client.get(path)).text
        assert pool.qr_code in page and "实体店·南方群" in page

        # The member scans the code: WeCom seats them in the pool's group.
        await f.sim.scenario("group_join", config_id=pool.config_id, external_userid=member_id)

        async def joined() -> bool:
            [member] = await f.rows(Member)
            return member.status == JOINED
        await f.settled(joined)
        [member] = await f.rows(Member)
        assert (member.segment, member.group_chat_id, member.flag) == ("shop_south", south, None)
        assert len(await _requests(f, WELCOME)) == 1
        counted = [e.step for e in await f.rows(FunnelEvent)]
        assert sorted(counted) == sorted([
            steps.CLICK, steps.FRIEND_ADDED, steps.WELCOME_SENT, steps.VERIFY_OPENED,
            steps.SUBMITTED, steps.APPROVED, steps.ROUTED, steps.JOINED])
        report = await funnel_report(f.app.runtime.settings.database_url, None, "7d")
        for step in (steps.CLICK, steps.FRIEND_ADDED, steps.JOINED):
            assert re.search(rf"^\s+{step}\s+1\s", report, re.MULTILINE), report
        group = await f.group_named(f"{SOUTH}1")
        assert group is not None and group.member_count == 2  # the owner and the member


async def test_a_full_group_leaves_the_pool_and_a_new_group_of_the_segment_joins_it(
        db_url: str, tmp_path: Path) -> None:
    async with funnel(db_url, tmp_path, ideal_size=3) as f:
        first, second = await f.new_group(f"{SOUTH}1"), await f.new_group(f"{SOUTH}2")
        await f.sync()
        pool = await f.pool("shop_south")
        way = f.sim.sim.world.join_ways[pool.config_id]
        assert way["chat_id_list"] == [first, second]
        # Two scan in: with the owner the first group has its ideal size of three.
        await f.sim.scenario("group_join", config_id=pool.config_id, ids=["wmA", "wmB"])

        async def rotated() -> bool:
            return way["chat_id_list"] == [second]
        await f.settled(rotated)
        group = await f.group_named(f"{SOUTH}1")
        assert group is not None and group.filled_at is not None and group.member_count == 3
        # The next scan lands in the second group; a third group made later joins the pool.
        seated = await f.sim.scenario("group_join", config_id=pool.config_id, ids=["wmC"])
        assert seated["chat_id"] == second
        third = await f.new_group(f"{SOUTH}3")

        async def grown() -> bool:
            return way["chat_id_list"] == [second, third]
        await f.settled(grown)
        assert (await f.pool("shop_south")).chat_ids == f'["{second}", "{third}"]'


async def test_a_member_who_joins_a_group_of_another_segment_is_flagged(
        db_url: str, tmp_path: Path) -> None:
    async with funnel(db_url, tmp_path) as f:
        reseller = await f.new_group("微商进货交流群1")
        added = await f.sim.scenario("friend_add", userid="zhangsan", state="douyin")
        await _welcome_text(f)
        await f.sim.scenario("group_join", chat_id=reseller,
                             external_userid=added["external_userid"], join_scene=0)

        async def flagged() -> bool:
            [member] = await f.rows(Member)
            return member.flag is not None
        await f.settled(flagged)
        [member] = await f.rows(Member)
        assert (member.flag, member.group_chat_id) == ("joined_unrouted", reseller)


async def _welcome_text(f: Funnel) -> str:
    async def sent() -> bool:
        return any(r["errcode"] == 0 for r in await _requests(f, WELCOME))
    await f.settled(sent)
    [request] = [r for r in await _requests(f, WELCOME) if r["errcode"] == 0]
    return str(request["body"]["text"]["content"])


async def _staff_notice(f: Funnel) -> str:
    async def told() -> bool:
        return bool(f.sim.sim.world.app_messages)
    await f.settled(told)
    [message] = f.sim.sim.world.app_messages
    return str(message["text"]["content"])


async def _requests(f: Funnel, path: str) -> list[dict[str, Any]]:
    answer = await f.sim.client.get("/sim/requests", params={"path": path})
    return list(answer.json()["requests"])
