"""Ctx: the one object every handler receives alongside its event."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.wecom.xmlutil import build_xml

if TYPE_CHECKING:
    from app.config import Settings
    from app.flows import Flows


@dataclass
class Ctx:
    """What a handler may use: the unit of work's session, settings, texts and a bound logger.

    Handlers never call WeCom; they change state through `session` (flush, never commit) and may
    set one passive reply for the callback that brought the event.
    """

    session: AsyncSession
    settings: Settings
    flows: Flows
    log: Any
    inbox_id: int
    callback_id: str
    now: datetime
    data: dict[str, Any] = field(default_factory=dict)
    handler: str | None = None
    reply: str | None = None

    def reply_text(self, to_user: str, content: str) -> None:
        """Answer the member's app message with a text passive reply (plaintext XML)."""
        self.reply = build_xml({
            "ToUserName": to_user,
            "FromUserName": self.settings.corp_id,
            "CreateTime": int(self.now.timestamp()),
            "MsgType": "text",
            "Content": content,
        })
