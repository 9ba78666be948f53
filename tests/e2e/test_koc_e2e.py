"""The recommender programme (推荐官) against the simulator, through real encrypted callbacks:
a verified member asks for a code in 微信客服 and gets it there; friends scan it, pass
verification as businesses and join their group; the settle job credits them, the third credit
earns the bronze tier, an operator approves it and the issue job posts it to the platform's
webhook (the simulator's stand-in checks the signature). A consumer, a phone another member
has, the recommender's own scan, a friend a second recommender brings later, and a burst of
new friends earn nothing."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.engine.bot.env import Env
from app.engine.db import utcnow
from app.faces.sim.groups import group_nickname
from app.faces.sim.platform import WEBHOOK_PATH
from app.groups.models import GroupMember, GroupPool
from app.groups.sync import sync_groups
from app.koc import referrals, rewards
from app.koc.honor import nickname
from app.koc.models import (
    CREDITED,
    FLAGGED,
    ISSUED,
    NOT_FIRST,
    REJECTED,
    Recommender,
    Referral,
    ReferralCredit,
    Reward,
)
from app.members.models import JOINED, ROUTED, Member
from handlers.koc import issue_rewards, settle_referrals
from tests.conftest import API_KEY, REPO, RunningApp, make_settings, rows_of, serve_app, wait_until
from tests.e2e.sim_server import AES_KEY, CORP_ID, SECRET, TOKEN, RunningSim, running_sim
from tests.verify.conftest import JPEG

KF = "wkSimKfKoc01"
HOOK_SECRET = "koc-e2e-webhook-secret-0001"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
WELCOME, KF_SEND = "externalcontact/send_welcome_msg", "kf/send_msg"
SHARE = re.compile(r"/koc/r/([a-z0-9]+)")


@dataclass
class Koc:
    sim: RunningSim
    app: RunningApp
    phones: int = 0

    async def rows(self, model: type) -> list[Any]:  # type: ignore[type-arg]
        return await rows_of(self.app.runtime.db, model)

    def env(self) -> Env[Any]:
        runtime = self.app.runtime
        return Env(runtime.settings, runtime.flows, runtime.db)

    async def member(self, external_userid: str) -> Member:
        [member] = [m for m in await self.rows(Member) if m.external_userid == external_userid]
        return member

    async def requests(self, path: str) -> list[dict[str, Any]]:
        answer = await self.sim.client.get("/sim/requests", params={"path": path})
        return list(answer.json()["requests"])

    async def until(self, probe: Any) -> None:
        await wait_until(probe, 15)
        await self.app.idle()

    def phone(self) -> str:
        """A new phone, of its own 7-digit range (the phone-range rule sees no cluster)."""
        self.phones += 1
        return f"1{30 + self.phones}{self.phones:04d}1234"

    async def add(self, external_userid: str, **how: Any) -> str:
        """A friend add (`userid` and/or the code's `state`); the verification link of the
        welcome WeCom received."""
        added = await self.sim.scenario("friend_add", external_userid=external_userid, **how)
        code = added["welcome_code"]

        async def welcomed() -> bool:
            return any(r["body"]["welcome_code"] == code and r["errcode"] == 0
                       for r in await self.requests(WELCOME))
        await self.until(welcomed)
        [text] = [r["body"]["text"]["content"] for r in await self.requests(WELCOME)
                  if r["body"]["welcome_code"] == code and r["errcode"] == 0]
        return re.search(r"(/verify/\S+)", text).group(1)  # type: ignore[union-attr]

    async def verify(self, link: str, external_userid: str, phone: str,
                     identity: str = "physical_shop") -> None:
        """The H5 form; a reviewer approves a business (moving a phone another member holds)."""
        files = [("photos", ("shop.jpg", JPEG, "image/jpeg"))]
        data = {"phone": phone, "identity_type": identity, "region": "广东"}
        assert (await self.app.client.post(link, data=data, files=files)).status_code == 200
        if identity == "consumer":
            return  # turned away by rule
        [review] = [r for r in (await self.app.client.get("/api/reviews", headers=AUTH)).json()
                    if r["external_userid"] == external_userid]
        path = f"/api/reviews/{review['id']}/approve"
        decided = await self.app.client.post(path, json={"reviewer": "op1"}, headers=AUTH)
        if decided.status_code == 409:  # the phone is linked to another member
            decided = await self.app.client.post(path.replace("approve", "move"),
                                                 json={"reviewer": "op1"}, headers=AUTH)
        assert decided.status_code == 200, decided.text

    async def join(self, external_userid: str) -> None:
        """The routed member scans their pool's group code and is seated."""
        async def routed() -> bool:
            return (await self.member(external_userid)).status == ROUTED
        await self.until(routed)
        [pool] = await self.rows(GroupPool)
        await self.sim.scenario("group_join", config_id=pool.config_id,
                                external_userid=external_userid)

        async def joined() -> bool:
            return (await self.member(external_userid)).status == JOINED
        await self.until(joined)

    async def newcomer(self, external_userid: str, phone: str | None = None,
                       identity: str = "physical_shop", **how: Any) -> None:
        link = await self.add(external_userid, **how)
        await self.verify(link, external_userid, phone or self.phone(), identity)
        if identity != "consumer":
            await self.join(external_userid)

    async def recommender(self, external_userid: str) -> str:
        """A verified member who joined asks in kf; their code's state, from the kf message
        that brought it (its share link names the code)."""
        await self.newcomer(external_userid, userid="lisi", state="douyin")
        await self.sim.scenario("kf_message", open_kfid=KF, external_userid=external_userid,
                                text="推荐官")

        async def delivered() -> list[str]:
            return [r["body"]["text"]["content"] for r in await self.requests(KF_SEND)
                    if r["body"]["touser"] == external_userid and r["errcode"] == 0
                    and SHARE.search(r["body"]["text"]["content"])]
        await self.until(delivered)
        [text] = await delivered()
        short_id = SHARE.search(text).group(1)  # type: ignore[union-attr]
        state = f"ref.{short_id}"
        way = [w for w in self.sim.sim.world.contact_ways.values() if w.get("state") == state]
        assert len(way) == 1 and way[0]["scene"] == 2 and way[0]["qr_code"]  # made in WeCom
        return state

    async def settle(self) -> dict[int, str]:
        await settle_referrals(self.env())
        return {r.referee_member_id: r.status for r in await self.rows(Referral)}


@asynccontextmanager
async def programme(db_url: str, tmp_path: Path, burst_max: int = 5) -> AsyncIterator[Koc]:
    flows = tmp_path / "sop_flows"
    shutil.copytree(REPO / "sop_flows", flows)
    koc = flows / "koc.yaml"
    koc.write_text(koc.read_text("utf-8").replace("burst: {max: 5,",
                                                  f"burst: {{max: {burst_max},"), "utf-8")
    async with running_sim(SOPBOT_SIM_MEMBERS="zhangsan,lisi", SOPBOT_SIM_KF_ACCOUNTS=KF,
                           SOPBOT_KOC_WEBHOOK_SECRET=HOOK_SECRET) as sim:
        settings = make_settings(
            db_url, corp_id=CORP_ID, callback_token=TOKEN, callback_aes_key=AES_KEY,
            agent_secret=SECRET, api_base=sim.base_url, outbox_retry_base_s=0.05,
            flows_path=flows, photo_dir=tmp_path / "photos",
            koc_webhook_url=sim.base_url + WEBHOOK_PATH, koc_webhook_secret=HOOK_SECRET)
        async with serve_app(settings, simulator=True) as app:
            sim.sim.callbacks.bot_url = f"{app.base_url}/wecom/callback"
            k = Koc(sim, app)
            await sim.scenario("group_create", owner="zhangsan", name="实体店南方交流群1")
            await wait_until(_pooled(k), 15)
            yield k


def _pooled(k: Koc) -> Any:
    async def probe() -> bool:
        runtime = k.app.runtime
        await sync_groups(runtime.db, runtime.wecom, runtime.flows.routing, ["zhangsan", "lisi"])
        return bool(await k.rows(GroupPool))
    return probe


async def test_referrals_credit_a_tier_reward_issued_through_the_webhook_and_cheats_earn_nothing(
        db_url: str, tmp_path: Path) -> None:
    async with programme(db_url, tmp_path) as k:
        code_a, code_b = await k.recommender("wmRecA"), await k.recommender("wmRecB")
        # Two friends scan A's code; a third scans A's, then later B's: B earns nothing.
        for friend in ("wmFriend1", "wmFriend2", "wmFriend3"):
            await k.newcomer(friend, state=code_a)
        await k.add("wmFriend3", userid="lisi", state=code_b)
        statuses = await k.settle()
        ids = {m.external_userid: m.id for m in await k.rows(Member)}
        assert [statuses[ids[f"wmFriend{n}"]] for n in (1, 2)] == [CREDITED, CREDITED]
        [second] = [r for r in await k.rows(Referral) if r.recommender_id == 2]
        assert (second.status, second.reason) == (NOT_FIRST, referrals.FIRST_ELSEWHERE)
        credits = await k.rows(ReferralCredit)
        assert sorted(c.referee_member_id for c in credits) == sorted(
            ids[f"wmFriend{n}"] for n in (1, 2, 3))
        assert {c.recommender_id for c in credits} == {1}

        # B's code: a consumer, a phone friend 1 holds, and B scanning their own code.
        await k.newcomer("wmConsumer", identity="consumer", state=code_b)
        friend1 = await k.member("wmFriend1")
        await k.newcomer("wmSecondPhone", phone=friend1.phone, state=code_b)
        await k.add("wmRecB", state=code_b)
        await k.settle()
        reasons = {r.referee_member_id: (r.status, r.reason) for r in await k.rows(Referral)
                   if r.recommender_id == 2 and r.status != NOT_FIRST}
        ids = {m.external_userid: m.id for m in await k.rows(Member)}
        assert reasons == {ids["wmConsumer"]: (REJECTED, referrals.CONSUMER),
                           ids["wmSecondPhone"]: (REJECTED, referrals.DUPLICATE_PHONE),
                           ids["wmRecB"]: (REJECTED, referrals.SELF)}
        assert len(await k.rows(ReferralCredit)) == 3  # B earned nothing

        # A's third credit earned bronze, once; approved, it is issued through the webhook.
        [reward] = await k.rows(Reward)
        assert (reward.recommender_id, reward.name, reward.status) == (1, "bronze", "earned")
        async with k.app.runtime.db.unit_of_work() as session:
            assert await rewards.decide(session, [reward.id], "approve", "op1", utcnow()) == [
                reward.id]
        await issue_rewards(k.env())
        [got] = (await k.sim.client.get("/sim/platform/rewards")).json()["rewards"]
        assert got["valid"] and got["status"] == 200 and not got["replay"]
        assert got["idempotency_key"] == f"koc-reward-{reward.id}"
        assert got["body"]["reward_id"] == reward.id and got["body"]["name"] == "bronze"
        assert got["body"]["external_userid"] == "wmRecA"
        [reward] = await k.rows(Reward)
        assert (reward.status, reward.issued_by, reward.issue_ref) == (ISSUED, "webhook",
                                                                     got["ref"])
        # A stranger's post is refused. The 光荣榜 names A by their group nickname, as
        # groupchat/get gives it (read again by `groups sync --full`: a join alone reads nothing).
        forged = await k.sim.client.post(WEBHOOK_PATH, content=b'{"reward_id": 1}', headers={
            "X-Sopbot-Timestamp": got["timestamp"], "X-Sopbot-Signature": "sha256=00",
            "Idempotency-Key": "koc-reward-1"})
        assert forged.status_code == 401
        runtime = k.app.runtime
        await sync_groups(runtime.db, runtime.wecom, runtime.flows.routing, ["zhangsan"],
                          full=True)
        async with k.app.runtime.db.reader() as session:
            assert await nickname(session, "wmRecA") == group_nickname("wmRecA")
        assert any(m.nickname == group_nickname("wmFriend1") for m in await k.rows(GroupMember))


async def test_a_burst_of_new_friends_is_flagged_for_an_operator_not_credited(
        db_url: str, tmp_path: Path) -> None:
    async with programme(db_url, tmp_path, burst_max=2) as k:
        code = await k.recommender("wmRecC")
        for friend in ("wmBurst1", "wmBurst2", "wmBurst3"):
            await k.newcomer(friend, state=code)
        statuses = await k.settle()
        ids = {m.external_userid: m.id for m in await k.rows(Member)}
        assert [statuses[ids[f"wmBurst{n}"]] for n in (1, 2, 3)] == [FLAGGED] * 3
        assert {r.reason for r in await k.rows(Referral)} == {referrals.BURST}
        assert await k.rows(ReferralCredit) == [] and await k.rows(Reward) == []
        [rec] = await k.rows(Recommender)
        assert rec.code == "ready" and rec.qr_code
