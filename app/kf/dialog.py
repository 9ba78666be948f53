"""The verification dialog in 微信客服: phone, identity type, region and photos asked one at a
time, with the same checks and the same review queue as the H5 form (app/verify/service.py).
Its state lives in kf_dialog (a deploy loses nothing), locked for the unit of work; expiry is
found out when the customer writes again (they are told it is over); a dialog abandoned for a
week is deleted by the scheduler's `expire_dialogs` job, with its photos."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.keywords.rules import normalise
from app.kf.models import KfDialog

PHONE, IDENTITY, REGION, PHOTOS = "phone", "identity", "region", "photos"
# Past its timeout a dialog still answers "expired" when the customer writes; after this long
# nobody is coming back, and the row and its photos go.
ABANDONED_AFTER = timedelta(days=7)
REGION_SUFFIXES = ("壮族自治区", "回族自治区", "维吾尔自治区", "自治区", "特别行政区", "省", "市")


async def current(session: AsyncSession, open_kfid: str, external_userid: str) -> KfDialog | None:
    """The customer's dialog, locked until the unit of work ends (one message at a time)."""
    return await session.scalar(select(KfDialog).where(
        KfDialog.open_kfid == open_kfid, KfDialog.external_userid == external_userid)
        .with_for_update())


async def start(session: AsyncSession, open_kfid: str, external_userid: str, now: datetime,
                timeout: timedelta) -> KfDialog:
    await end(session, open_kfid, external_userid)
    row = KfDialog(open_kfid=open_kfid, external_userid=external_userid, step=PHONE,
                   photos="[]", expires_at=now + timeout, updated_at=now)
    session.add(row)
    await session.flush()
    return row


async def end(session: AsyncSession, open_kfid: str, external_userid: str) -> None:
    await session.execute(delete(KfDialog).where(KfDialog.open_kfid == open_kfid,
                                                 KfDialog.external_userid == external_userid))


async def drop_abandoned(session: AsyncSession, now: datetime) -> tuple[int, list[str]]:
    """Delete the dialogs expired over ABANDONED_AFTER ago: how many, and their photos' names
    (the caller deletes the files once the deletion has committed)."""
    rows = list(await session.scalars(select(KfDialog).where(
        KfDialog.expires_at < now - ABANDONED_AFTER).with_for_update(skip_locked=True)))
    for row in rows:
        await session.delete(row)
    return len(rows), [name for row in rows for name in photos(row)]


def touch(row: KfDialog, now: datetime, timeout: timedelta, step: str | None = None) -> None:
    row.step = step or row.step
    row.updated_at, row.expires_at = now, now + timeout


def photos(row: KfDialog) -> list[str]:
    return list(json.loads(row.photos))


def add_photo(row: KfDialog, name: str) -> int:
    names = [*photos(row), name]
    row.photos = json.dumps(names)
    return len(names)


def region_of(text: str, regions: tuple[str, ...]) -> str | None:
    """The declared region the customer named: 广东, 广东省 and 广东 广州 all give 广东."""
    said = normalise(text).replace(" ", "")
    for suffix in REGION_SUFFIXES:
        said = said.removesuffix(suffix)
    return next((r for r in regions if said == r or said.startswith(r)), None)


async def awaits_photo(session: AsyncSession, open_kfid: str, external_userid: str,
                       now: datetime) -> bool:
    """Whether a picture from this customer may be a verification photo: they are in the
    dialog (at any step: the messages before the picture may not be handled yet when the kf
    reader fetches it; the handler keeps it only in the photo step). Only those are fetched."""
    row = await session.scalar(select(KfDialog).where(
        KfDialog.open_kfid == open_kfid, KfDialog.external_userid == external_userid))
    return row is not None and row.expires_at > now
