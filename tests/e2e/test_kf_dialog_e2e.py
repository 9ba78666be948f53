"""The verification dialog in 微信客服 against the simulator: phone, identity (a menu click),
region and photos (pictures fetched from WeCom's media), each with the form's checks, "取消" at
any step, and the submission in the same review queue as the H5 form."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.engine.db import utcnow
from app.engine.inbox.models import InboxEvent
from app.kf.models import KfDialog
from app.members import service as members
from app.members.models import Member
from app.verify.models import Verification
from tests.conftest import make_settings, serve_app
from tests.e2e.sim_server import AES_KEY, CORP_ID, SECRET, TOKEN, RunningSim, running_sim
from tests.e2e.test_kf_e2e import KF, Kf, _sent_to
from tests.verify.conftest import AUTH, JPEG


async def _member(kf: Kf, customer: str) -> None:
    async with kf.app.runtime.db.unit_of_work() as session:
        await members.create(session, utcnow(), "test", external_userid=customer,
                             staff_userid="zhangsan", channel="organic")


async def _says(kf: Kf, customer: str, text: str, **extra: Any) -> str:
    """The customer writes; the last thing sopbot answered them (it waits for one)."""
    before = len(_sent_to(kf.sim, customer))
    await kf.sim.scenario("kf_message", open_kfid=KF, external_userid=customer, text=text,
                          **extra)

    async def answered() -> bool:
        return len(_sent_to(kf.sim, customer)) > before
    await kf.until(answered)
    return _reply(_sent_to(kf.sim, customer)[-1])


async def _sends_picture(kf: Kf, customer: str, content: bytes) -> str:
    before = len(_sent_to(kf.sim, customer))
    await kf.sim.scenario("kf_image", open_kfid=KF, external_userid=customer,
                          content_base64=base64.b64encode(content).decode())

    async def answered() -> bool:
        return len(_sent_to(kf.sim, customer)) > before
    await kf.until(answered)
    return _reply(_sent_to(kf.sim, customer)[-1])


def _reply(sent: dict[str, Any]) -> str:
    if sent["msgtype"] == "msgmenu":
        menu = sent["msgmenu"]
        return menu["head_content"] + "|" + "|".join(i["click"]["id"] for i in menu["list"])
    return str(sent["text"]["content"])


async def _kf(db_url: str, sim: RunningSim, photo_dir: Path) -> Any:
    settings = make_settings(db_url, corp_id=CORP_ID, callback_token=TOKEN,
                             callback_aes_key=AES_KEY, agent_secret=SECRET,
                             api_base=sim.base_url, outbox_retry_base_s=0.05,
                             photo_dir=photo_dir)
    return serve_app(settings, simulator=True)


@asynccontextmanager
async def member_in_kf(db_url: str, photo_dir: Path, customer: str) -> AsyncIterator[Kf]:
    """The simulator and the service wired together, `customer` a member who can verify."""
    async with running_sim(SOPBOT_SIM_KF_ACCOUNTS=KF) as sim, \
            await _kf(db_url, sim, photo_dir) as app:
        sim.sim.callbacks.bot_url = f"{app.base_url}/wecom/callback"
        kf = Kf(sim, app)
        await _member(kf, customer)
        yield kf


async def test_a_shop_owner_verifies_in_the_chat(db_url: str, tmp_path: Path) -> None:
    photo_dir = tmp_path / "photos"
    async with running_sim(SOPBOT_SIM_KF_ACCOUNTS=KF) as sim, \
            await _kf(db_url, sim, photo_dir) as app:
        sim.sim.callbacks.bot_url = f"{app.base_url}/wecom/callback"
        kf = Kf(sim, app)
        await _member(kf, "wmDlg")
        assert (await _says(kf, "wmDlg", "认证")).startswith("好的，我们开始商家身份认证")
        assert (await _says(kf, "wmDlg", "12345")).startswith("请填写 11 位中国大陆手机号")
        menu = await _says(kf, "wmDlg", "+86 138-0013-8000")
        assert menu.startswith("请选择您的身份：|identity.physical_shop|")
        assert (await _says(kf, "wmDlg", "实体店", menu_id="identity.physical_shop")
                ).startswith("请输入您所在的省份")
        assert (await _says(kf, "wmDlg", "火星")).startswith("没有找到这个地区")
        assert (await _says(kf, "wmDlg", "广东省")).startswith("请发送 1-3 张店铺或经营照片")
        assert (await _says(kf, "wmDlg", "完成")).startswith("请至少发送 1 张照片")
        not_image = await _sends_picture(kf, "wmDlg", b"GIF89a-not-a-photo" * 3)
        assert not_image.startswith("这张照片无法使用：照片格式无法识别")
        assert (await _sends_picture(kf, "wmDlg", JPEG)).startswith("已收到第 1 张照片")
        await sim.client.post("/sim/faults", json={"path": "media/get", "errcode": 40007,
                                                   "count": 1})
        assert (await _sends_picture(kf, "wmDlg", JPEG)).startswith("这张照片没能收到")
        assert (await _says(kf, "wmDlg", "完成")).startswith("您的认证资料已提交，正在审核中")
        [row] = await kf.rows(Verification)
        assert (row.phone, row.identity_type, row.region, row.status) == (
            "13800138000", "physical_shop", "广东", "pending")
        [photo] = row.photos
        assert (photo_dir / photo).read_bytes() == JPEG
        assert await kf.rows(KfDialog) == []
        # Starting again while the review is pending says where it stands.
        assert (await _says(kf, "wmDlg", "认证")).startswith("您的认证资料已提交")
        # The review approves it, as for the form: the member is routed and their staff told.
        approved = await app.client.post(f"/api/reviews/{row.id}/approve",
                                         json={"reviewer": "op1"}, headers=AUTH)
        assert approved.status_code == 200, approved.text
        [member] = await kf.rows(Member)
        assert (member.status, member.segment, member.phone) == (
            "routed", "shop_south", "13800138000")
        assert (await _says(kf, "wmDlg", "认证")).startswith("恭喜，您的商家身份已认证通过")


async def test_done_after_the_third_photo_submitted_gets_the_status(
        db_url: str, tmp_path: Path) -> None:
    async with member_in_kf(db_url, tmp_path / "photos", "wmThree") as kf:
        for text in ("认证", "13800138001"):
            await _says(kf, "wmThree", text)
        await _says(kf, "wmThree", "实体店", menu_id="identity.physical_shop")
        await _says(kf, "wmThree", "浙江")
        for _ in range(2):
            assert (await _sends_picture(kf, "wmThree", JPEG)).startswith("已收到第")
        # The third picture submits at once; the customer then says "完成" as they were told.
        assert (await _sends_picture(kf, "wmThree", JPEG)).startswith("您的认证资料已提交")
        assert (await _says(kf, "wmThree", "完成")).startswith("您的认证资料已提交")
        [row] = await kf.rows(Verification)
        assert len(row.photos) == 3 and row.status == "pending"


async def test_a_reply_sent_in_time_counts_even_when_handled_after_the_timeout(
        db_url: str, tmp_path: Path) -> None:
    async with member_in_kf(db_url, tmp_path / "photos", "wmLate") as kf:
        sim, app = kf.sim, kf.app
        await _says(kf, "wmLate", "认证")
        # The customer answers 10 minutes ago (WeCom's send_time), inside the dialog's time,
        # but sopbot handles it only now, 5 minutes after the dialog's timeout (a backlog).
        async with app.runtime.db.unit_of_work() as session:
            [row] = (await session.execute(select(KfDialog))).scalars().all()
            row.expires_at = utcnow() - timedelta(minutes=5)
        now = (await sim.client.get("/sim/clock")).json()["now"]
        moved = await sim.client.post("/sim/clock", json={"set_epoch_s": now - 600})
        assert moved.status_code == 200, moved.text
        assert (await _says(kf, "wmLate", "13800138002")).startswith("请选择您的身份")


async def test_cancel_a_consumer_and_a_stranger(db_url: str, tmp_path: Path) -> None:
    async with running_sim(SOPBOT_SIM_KF_ACCOUNTS=KF) as sim, \
            await _kf(db_url, sim, tmp_path / "photos") as app:
        sim.sim.callbacks.bot_url = f"{app.base_url}/wecom/callback"
        kf = Kf(sim, app)
        assert (await _says(kf, "wmNobody", "认证")).startswith("请先通过 App 内的二维码添加")
        await _member(kf, "wmCancel")
        await _says(kf, "wmCancel", "认证")
        await _says(kf, "wmCancel", "13900139000")
        # A picture before the photo step is fetched (the dialog is on) but not kept.
        await sim.scenario("kf_image", open_kfid=KF, external_userid="wmCancel",
                           content_base64=base64.b64encode(JPEG).decode())

        async def handled() -> bool:
            rows = await kf.rows(InboxEvent)
            return any(r.kind == "kf.image" and r.status == "done" for r in rows)
        await kf.until(handled)
        photo_dir = tmp_path / "photos"
        assert not photo_dir.exists() or list(photo_dir.iterdir()) == []
        assert (await _says(kf, "wmCancel", "取消")).startswith("已取消认证")
        assert await kf.rows(KfDialog) == []
        await _member(kf, "wmBuyer")
        await _says(kf, "wmBuyer", "认证")
        await _says(kf, "wmBuyer", "13700137000")
        turned_away = await _says(kf, "wmBuyer", "消费者", menu_id="identity.consumer")
        assert turned_away.startswith("感谢您的关注！我们的社群仅面向商家开放")
        [row] = await kf.rows(Verification)
        assert (row.identity_type, row.status, row.reviewer) == ("consumer", "rejected", "auto")
