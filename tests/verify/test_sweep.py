"""Photo files no row names are deleted once they are a day old; every photo a verification,
an open kf dialog or an unhandled inbox row names is kept, and so is every young file."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from app.engine.db import Database, utcnow
from app.engine.inbox.models import InboxEvent
from app.flows import load_flows
from app.kf.models import KfDialog
from app.members import service as members
from app.verify.models import Verification
from app.verify.sweep import sweep_orphan_photos
from tests.conftest import REPO, scheduler_for

OLD = ["verified.jpg", "in_dialog.png", "awaited.jpg", "orphan.jpg", "handled.jpg"]


def photo_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "photos"
    directory.mkdir()
    two_days_ago = (utcnow() - timedelta(days=2)).timestamp()
    for name in [*OLD, "young.jpg"]:
        (directory / name).write_bytes(b"\xff\xd8\xff photo")
        if name in OLD:
            os.utime(directory / name, (two_days_ago, two_days_ago))
    return directory


async def seed(db: Database) -> None:
    now = utcnow()
    async with db.unit_of_work() as session:
        member = await members.create(session, now, "test", external_userid="wmSweep",
                                      staff_userid="lisi", channel="organic")
        session.add(Verification(member_id=member.id, phone="13800138000",
                                 identity_type="physical_shop", region="广东",
                                 photos=["verified.jpg"], status="pending"))
        session.add(KfDialog(open_kfid="wk1", external_userid="wmSweep", step="photos",
                             photos='["in_dialog.png"]', expires_at=now + timedelta(hours=1)))
        for status, name in (("pending", "awaited.jpg"), ("done", "handled.jpg")):
            session.add(InboxEvent(dedupe_key=f"kf:{name}", kind="kf.image",
                                   payload=f'{{"msgtype": "image", "sopbot_photo": "{name}"}}',
                                   callback_id="kf-1", status=status))
        # A text that happens to mention a file's name keeps nothing alive.
        session.add(InboxEvent(dedupe_key="kf:text", kind="kf.text", callback_id="kf-1",
                               payload='{"msgtype": "text", "text": {"content": "orphan.jpg"}}',
                               status="pending"))


async def test_only_old_files_nobody_names_are_deleted(db_url: str, tmp_path: Path) -> None:
    directory = photo_dir(tmp_path)
    db = Database(db_url)
    try:
        await seed(db)
        assert await sweep_orphan_photos(db, directory, utcnow()) == ["handled.jpg",
                                                                       "orphan.jpg"]
        assert sorted(p.name for p in directory.iterdir()) == [
            "awaited.jpg", "in_dialog.png", "verified.jpg", "young.jpg"]
        assert await sweep_orphan_photos(db, directory, utcnow()) == []  # nothing more
    finally:
        await db.dispose()


async def test_the_hourly_job_sweeps_and_a_missing_directory_is_no_error(
        db_url: str, tmp_path: Path) -> None:
    directory = photo_dir(tmp_path)
    db = Database(db_url)
    flows = load_flows(REPO / "sop_flows")
    try:
        await seed(db)
        for where in (directory, tmp_path / "never-made"):
            scheduler = scheduler_for(db, flows, photo_dir=where)
            await scheduler.run_job("sweep_photos")
            await scheduler.stop()  # on PostgreSQL: let go of the leader's lock
        assert not (directory / "orphan.jpg").exists()
        assert (directory / "verified.jpg").exists()
    finally:
        await db.dispose()


async def test_a_dialog_abandoned_for_a_week_goes_with_its_photos(db_url: str,
                                                                  tmp_path: Path) -> None:
    directory = photo_dir(tmp_path)
    db = Database(db_url)
    now = utcnow()
    try:
        async with db.unit_of_work() as session:
            for customer, expired, photo in (("wmGone", timedelta(days=8), "in_dialog.png"),
                                             ("wmLater", timedelta(hours=1), "young.jpg")):
                session.add(KfDialog(open_kfid="wk1", external_userid=customer, step="photos",
                                     photos=f'["{photo}"]', expires_at=now - expired))
        scheduler = scheduler_for(db, load_flows(REPO / "sop_flows"), photo_dir=directory)
        await scheduler.run_job("expire_dialogs")
        await scheduler.stop()
        async with db.reader() as session:
            left = [row.external_userid for row in await session.scalars(select(KfDialog))]
        # The one expired an hour ago stays: its customer is still told it is over.
        assert left == ["wmLater"]
        assert not (directory / "in_dialog.png").exists()
        assert (directory / "young.jpg").exists() and (directory / "orphan.jpg").exists()
    finally:
        await db.dispose()
