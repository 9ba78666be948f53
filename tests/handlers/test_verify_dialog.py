"""The kf verification dialog (handlers/verify_dialog.py): each step on the harness, and its
photo files following its transaction: a unit of work that rolls back leaves the dialog and its
files as they were (the retried handler needs both)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.engine.bot.context import Ctx
from app.engine.db import Database, utcnow
from app.engine.logs import get_logger
from app.engine.wecom.api_kf import KfMessage
from app.engine.wecom.kf_events import CUSTOMER
from app.engine.wecom.parsing import kf_event
from app.flows import load_flows
from app.kf import dialog
from app.kf.models import KfConversation, KfDialog
from app.verify.models import Verification
from app.verify.photos import Photo
from app.verify.photos import store as store_photos
from handlers.verify_dialog import verify_in_dialog
from tests.conftest import REPO, make_settings, rows_of
from tests.handlers.harness import Bot, friend_added, kf_image, kf_text
from tests.verify.conftest import JPEG


class Abort(Exception):
    pass


async def _cancel(db: Database, photo_dir: Path, *, fail: bool) -> None:
    """The customer says 取消 in the photo step; the unit of work fails after the handler
    when `fail`."""
    event = kf_event(KfMessage.model_validate({
        "msgid": "m-cancel", "open_kfid": "wk1", "external_userid": "wmC", "origin": CUSTOMER,
        "msgtype": "text", "text": {"content": "取消"}, "send_time": int(utcnow().timestamp())}))
    settings = make_settings(str(db.engine.url), photo_dir=photo_dir)
    async with db.unit_of_work() as session:
        row = await dialog.current(session, "wk1", "wmC")
        ctx = Ctx(session=session, settings=settings, flows=load_flows(REPO / "sop_flows"),
                  log=get_logger("test"), inbox_id=1, callback_id="kf-1", now=utcnow(),
                  data={"dialog": row})
        await verify_in_dialog(event, ctx)  # type: ignore[arg-type]
        if fail:
            raise Abort


async def test_a_rolled_back_cancel_keeps_the_dialog_and_its_photos(
        db_url: str, tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8\xff photo")
    db = Database(db_url)
    try:
        async with db.unit_of_work() as session:
            session.add(KfDialog(open_kfid="wk1", external_userid="wmC", step=dialog.PHOTOS,
                                 photos='["a.jpg"]', expires_at=utcnow() + timedelta(hours=1),
                                 updated_at=utcnow()))
        with pytest.raises(Abort):
            await _cancel(db, tmp_path, fail=True)
        assert [r.photos for r in await rows_of(db, KfDialog)] == ['["a.jpg"]']
        assert (tmp_path / "a.jpg").exists()
        await _cancel(db, tmp_path, fail=False)
        assert await rows_of(db, KfDialog) == []
        assert not (tmp_path / "a.jpg").exists()
    finally:
        await db.dispose()


# --- the dialog's steps, on the harness ------------------------------------------------------

DIALOG = "handlers.verify_dialog.verify_in_dialog"


async def _said(bot: Bot, since: int = 0) -> list[str]:
    """What the dialog answered (a menu as its head and item ids), oldest first."""
    answers = [o for o in await bot.outbox(kind="kf_reply")
               if o.key.startswith("kfdialog:")][since:]
    assert all(a.api == "kf/send_msg" for a in answers)
    return [a.body["text"]["content"] if a.body["msgtype"] == "text" else
            "|".join([a.body["msgmenu"]["head_content"],
                      *(i["click"]["id"] for i in a.body["msgmenu"]["list"])])
            for a in answers]


async def _says(bot: Bot, customer: str, text: str, menu_id: str | None = None) -> str:
    """The customer writes; the one answer it gets."""
    before = len(await _said(bot))
    handled = await bot.feed(kf_text(text, customer, menu_id=menu_id))
    assert handled.handler == DIALOG
    [answer] = await _said(bot, before)
    return answer


async def _photo(bot: Bot, customer: str) -> str:
    """A picture the kf reader fetched and stored; the dialog's answer and the file's name."""
    [name] = await store_photos([Photo(JPEG, "jpg")], bot.settings.photo_dir)
    handled = await bot.feed(kf_image(customer, photo=name))
    assert handled.handler == "handlers.verify_dialog.verify_photo"
    return name


async def _dialog(bot: Bot) -> KfDialog:
    [row] = await bot.rows(KfDialog)
    return row


async def _friend(bot: Bot, customer: str) -> None:
    await bot.feed(friend_added(customer, state="organic", welcome_code=f"WC-{customer}"))


async def _to_photos(bot: Bot, customer: str) -> None:
    await _friend(bot, customer)
    for text in ("认证", "13800138000"):
        await _says(bot, customer, text)
    await bot.feed(kf_text("实体店", customer, menu_id="identity.physical_shop"))
    await _says(bot, customer, "广东")


async def test_each_step_keeps_its_answer_and_done_submits(bot: Bot) -> None:
    texts, errors = bot.flows.verify.dialog.texts, bot.flows.verify.errors
    await _friend(bot, "wmD")
    assert await _says(bot, "wmD", "认证") == texts.ask_phone
    row = await _dialog(bot)
    assert (row.step, row.expires_at) == ("phone", bot.clock.now + timedelta(minutes=30))
    assert await _says(bot, "wmD", "12345") == errors.phone_invalid
    assert (await _dialog(bot)).step == "phone"
    menu = "|".join([texts.ask_identity, *(f"identity.{key}"
                                           for key in bot.flows.verify.identity_types)])
    assert await _says(bot, "wmD", "+86 138-0013-8000") == menu
    row = await _dialog(bot)
    assert (row.step, row.phone) == ("identity", "13800138000")
    before = len(await _said(bot))
    await bot.feed(kf_text("不知道", "wmD"))  # the problem, then the question again
    assert await _said(bot, before) == [errors.identity_invalid, menu]
    assert await _says(bot, "wmD", "实体店", menu_id="identity.physical_shop") == \
        texts.ask_region
    assert (await _dialog(bot)).identity_type == "physical_shop"
    assert await _says(bot, "wmD", "火星") == texts.region_invalid
    assert await _says(bot, "wmD", "广东省") == texts.ask_photos
    row = await _dialog(bot)
    assert (row.step, row.region) == ("photos", "广东")
    assert await _says(bot, "wmD", "完成") == texts.need_photo
    await bot.feed(kf_image("wmD", photo_error="photo_not_image"))
    assert (await _said(bot))[-1] == texts.photo_bad.format(reason=errors.photo_not_image)
    name = await _photo(bot, "wmD")
    assert (await _said(bot))[-1] == texts.photo_received.format(count=1, left=2)
    assert json.loads((await _dialog(bot)).photos) == [name]
    assert await _says(bot, "wmD", "好了") == bot.flows.verify.pages.pending
    [verification] = await bot.rows(Verification)
    assert (verification.phone, verification.identity_type, verification.region,
            verification.status, verification.photos) == (
        "13800138000", "physical_shop", "广东", "pending", [name])
    assert await bot.rows(KfDialog) == []
    assert (bot.settings.photo_dir / name).read_bytes() == JPEG


async def test_a_stranger_is_asked_to_add_a_staff_member_first(bot: Bot) -> None:
    assert await _says(bot, "wmStranger", "认证") == \
        bot.flows.verify.dialog.texts.not_a_friend
    assert await bot.rows(KfDialog) == []


async def test_cancel_ends_the_dialog_and_its_photos_go(bot: Bot) -> None:
    await _to_photos(bot, "wmCancel")
    name = await _photo(bot, "wmCancel")
    assert await _says(bot, "wmCancel", "取消") == bot.flows.verify.dialog.texts.cancelled
    assert await bot.rows(KfDialog) == [] and await bot.rows(Verification) == []
    assert not (bot.settings.photo_dir / name).exists()


async def test_a_dialog_left_alone_has_expired_when_the_customer_comes_back(bot: Bot) -> None:
    await _friend(bot, "wmSlow")
    await _says(bot, "wmSlow", "认证")
    bot.clock.advance(minutes=31)
    assert await _says(bot, "wmSlow", "13800138000") == bot.flows.verify.dialog.texts.expired
    assert await bot.rows(KfDialog) == []


async def test_a_consumer_is_turned_away_at_once(bot: Bot) -> None:
    await _friend(bot, "wmBuyer")
    for text in ("认证", "13800138009"):
        await _says(bot, "wmBuyer", text)
    assert await _says(bot, "wmBuyer", "消费者", menu_id="identity.consumer") == \
        bot.flows.verify.pages.consumer
    [verification] = await bot.rows(Verification)
    assert (verification.identity_type, verification.status) == ("consumer", "rejected")
    assert await bot.rows(KfDialog) == []
    # Asking again says where they stand; no new dialog.
    assert await _says(bot, "wmBuyer", "认证") == bot.flows.verify.pages.consumer
    assert await bot.rows(KfDialog) == []


async def test_the_third_photo_submits_and_done_then_gets_the_status(bot: Bot) -> None:
    await _to_photos(bot, "wmThree")
    names = [await _photo(bot, "wmThree") for _ in range(3)]
    assert (await _said(bot))[-1] == bot.flows.verify.pages.pending
    [verification] = await bot.rows(Verification)
    assert verification.photos == names
    assert await _says(bot, "wmThree", "完成") == bot.flows.verify.pages.pending
    assert len(await bot.rows(Verification)) == 1


async def test_a_picture_before_the_photo_step_is_not_kept(bot: Bot) -> None:
    await _friend(bot, "wmEarly")
    await _says(bot, "wmEarly", "认证")
    before = len(await _said(bot))
    name = await _photo(bot, "wmEarly")
    assert await _said(bot, before) == []
    assert not (bot.settings.photo_dir / name).exists()
    assert json.loads((await _dialog(bot)).photos) == []


async def test_no_dialog_while_a_person_has_the_conversation(bot: Bot) -> None:
    await _friend(bot, "wmPerson")
    await bot.feed(kf_text("你好", "wmPerson"))
    async with bot.session() as session:
        [row] = (await session.scalars(select(KfConversation))).all()
        row.handed_off_at = bot.clock.now
    handled = await bot.feed(kf_text("认证", "wmPerson"))
    assert handled.handler == "handlers.keywords.answer_by_keyword"
    assert await bot.rows(KfDialog) == []
    assert await _said(bot) == []
