"""The kf verification dialog's photo files follow its transaction: a unit of work that rolls
back leaves the dialog and its files as they were (the retried handler needs both)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from app.bot.context import Ctx
from app.db import Database, utcnow
from app.flows import load_flows
from app.kf import dialog
from app.kf.models import KfDialog
from app.logs import get_logger
from app.wecom.api_kf import KfMessage
from app.wecom.kf_events import CUSTOMER, kf_event
from handlers.verify_dialog import verify_in_dialog
from tests.conftest import REPO, make_settings, rows_of


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
