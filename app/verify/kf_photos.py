"""Pictures a customer sends during the kf verification dialog's photo step, fetched from WeCom
(media/get) before the kf reader stores their page, and kept with the verification photos; the
message then carries the file's name, or why it could not be kept. Other pictures are not
fetched. Registered by the verification dialog (handlers/verify_dialog.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx

from app.engine.bot.router import KfPageStep
from app.engine.config import Settings
from app.engine.db import Database
from app.engine.logs import get_logger
from app.engine.wecom.api_kf import KfMessage
from app.engine.wecom.client import MediaTooLarge, WeComClient
from app.engine.wecom.errors import WeComError
from app.engine.wecom.kf_events import CUSTOMER, PHOTO, PHOTO_ERROR
from app.kf import dialog
from app.verify.photos import Photo, image_type
from app.verify.photos import store as store_photos

log = get_logger("sopbot.kf")
MAX_PHOTOS_PER_PAGE = 10  # bounded, so a burst of pictures cannot outlast the reader's lease



def photo_fetcher(db: Database, wecom: WeComClient, settings: Settings,
                  clock: Callable[[], datetime]) -> KfPageStep:
    """The kf reader's page step: each dialog photo fetched and stored, at most ten a page."""

    async def fetch_photos(messages: list[KfMessage]) -> list[KfMessage]:
        fetched, out = 0, []
        for message in messages:
            if message.origin == CUSTOMER and message.msgtype == "image" and \
                    await _photo_wanted(db, message, clock()):
                fetched += 1
                found = await _fetch(wecom, settings, message) \
                    if fetched <= MAX_PHOTOS_PER_PAGE else {PHOTO_ERROR: "download_failed"}
                message = KfMessage.model_validate({**message.model_dump(), **found})
            out.append(message)
        return out
    return fetch_photos


async def _photo_wanted(db: Database, message: KfMessage, now: datetime) -> bool:
    async with db.reader() as session:
        return await dialog.awaits_photo(session, message.open_kfid or "",
                                         message.external_userid or "", now)


async def _fetch(wecom: WeComClient, settings: Settings, message: KfMessage) -> dict[str, str]:
    media_id = str(((message.model_extra or {}).get("image") or {}).get("media_id", ""))
    try:
        data = await wecom.download_media(media_id, max_bytes=settings.photo_max_bytes)
    except MediaTooLarge:
        return {PHOTO_ERROR: "photo_too_large"}
    except (WeComError, httpx.HTTPError) as exc:
        log.warning("kf_photo_not_fetched", error=str(exc))
        return {PHOTO_ERROR: "download_failed"}
    ext = image_type(data[:12])
    if ext is None:
        return {PHOTO_ERROR: "photo_not_image"}
    try:
        [name] = await store_photos([Photo(data, ext)], settings.photo_dir)
    except OSError as exc:  # a full or unwritable disk must not stop the account
        log.error("kf_photo_not_stored", error=type(exc).__name__)
        return {PHOTO_ERROR: "download_failed"}
    return {PHOTO: name}
