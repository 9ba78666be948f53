"""Typed events for what kf/sync_msg returns (wecom-reference §5.11). They are not callbacks:
the kf reader (app/kf/reader.py) stores each pulled message in the inbox as JSON, and the inbox
worker feeds it through the same router as callbacks, so handlers match them like any event.

    KfPulled
    ├── KfCustomerText      a customer's text (or menu click)
    ├── KfCustomerMedia     a customer's image, voice, video or file (media_id)
    ├── KfOtherMessage      anything else: a servicer's message, a location, a link, ...
    ├── KfSessionEntered    enter_session: scene, scene_param, a welcome_code valid 20 s
    ├── KfSendFailed        msg_send_fail: one of our messages did not reach the customer
    ├── KfSessionChanged    session_status_change
    └── KfOtherEvent        any other event
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import ClassVar

from pydantic import Field

from app.engine.wecom.api_kf import KfMessage
from app.engine.wecom.events import Event, bounded_key

CUSTOMER = 3  # KfMessage.origin: a customer's message
MEDIA_TYPES = ("image", "voice", "video", "file")


class KfPulled(Event):
    KIND: ClassVar[str] = "kf"
    to_user_name: str = Field("", alias="ToUserName")
    create_time: int = Field(0, alias="CreateTime")
    msg_type: str = Field("", alias="MsgType")
    message: KfMessage

    @property
    def open_kfid(self) -> str:
        event = self.message.event
        return self.message.open_kfid or (event.open_kfid if event else None) or ""

    @property
    def external_userid(self) -> str:
        event = self.message.event
        return self.message.external_userid or (event.external_userid if event else None) or ""

    @property
    def kind(self) -> str:
        event = self.message.event
        return f"kf.event.{event.event_type}" if event else f"kf.{self.message.msgtype}"

    def sent_at(self, now: datetime) -> datetime:
        """When the customer sent it (WeCom's send_time), never later than `now`; `now` when
        WeCom gave none. Timeouts and deadlines count from here, so a backlog in the inbox (or
        a slow reader) does not eat into the customer's time."""
        if not self.create_time:
            return now
        return min(datetime.fromtimestamp(self.create_time, now.tzinfo), now)

    def dedupe_key(self) -> str:
        """msgid is unique per kf account: a page read twice stores nothing twice."""
        digest = hashlib.sha256(f"{self.open_kfid}:{self.message.msgid}".encode()).hexdigest()
        return f"kf:{digest[:48]}"

    def order_key(self) -> str | None:
        # A customer's dialog with one kf account runs step by step: answer in order.
        if not self.external_userid:
            return None
        return bounded_key(f"kf:{self.open_kfid}:{self.external_userid}")


class KfCustomerText(KfPulled):
    @property
    def content(self) -> str:
        return self.message.text.content if self.message.text else ""

    @property
    def menu_id(self) -> str | None:
        return self.message.text.menu_id if self.message.text else None


# Set by the verification dialog's page step (app/verify/kf_photos.py) before the page is stored.
PHOTO, PHOTO_ERROR = "sopbot_photo", "sopbot_photo_error"


class KfCustomerMedia(KfPulled):
    @property
    def media_id(self) -> str:
        body = (self.message.model_extra or {}).get(self.message.msgtype) or {}
        return str(body.get("media_id", ""))

    @property
    def photo(self) -> str | None:
        """The stored file of a verification photo the kf reader fetched."""
        return (self.message.model_extra or {}).get(PHOTO)

    @property
    def photo_error(self) -> str | None:
        """Why a verification photo could not be kept: photo_not_image, photo_too_large or
        download_failed."""
        return (self.message.model_extra or {}).get(PHOTO_ERROR)


class KfOtherMessage(KfPulled):
    pass


class KfSessionEntered(KfPulled):
    pass


class KfSendFailed(KfPulled):
    pass


class KfSessionChanged(KfPulled):
    pass


class KfOtherEvent(KfPulled):
    pass
