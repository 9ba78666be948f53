"""Ctx: the one object every handler receives alongside its event."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.outbox import store as outbox
from app.engine.outbox.models import NORMAL
from app.engine.wecom.api import SendMessage, Text
from app.engine.wecom.xmlutil import build_xml

if TYPE_CHECKING:
    from app.engine.config import Settings
    from app.engine.wecom.api import ApiCall

# The loaded sop_flows (app.flows.Flows, above the engine): handlers write Ctx[Flows].
F = TypeVar("F")


@dataclass
class Ctx(Generic[F]):
    """What a handler may use: the unit of work's session, settings, texts and a bound logger.

    Handlers never call WeCom; they change state through `session` (flush, never commit), queue
    messages with `queue` (delivered by the outbox after the unit of work commits) and may set one
    passive reply for the callback that brought the event.
    """

    session: AsyncSession
    settings: Settings
    flows: F
    log: Any
    inbox_id: int
    callback_id: str
    now: datetime
    # When the callback that brought the event was received (deadlines count from it).
    received_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)
    handler: str | None = None
    reply: str | None = None

    async def queue(self, key: str, call: ApiCall[Any], *, kind: str, priority: int = NORMAL,
                   deadline: datetime | None = None) -> bool:
        """Queue a message in this unit of work; False if `key` was queued already (a retried
        handler), so nothing is ever sent twice. Priority FAST wakes the sender's fast lane."""
        return await outbox.enqueue(self.session, key, call, kind=kind, priority=priority,
                                    deadline=deadline)

    async def answer_text(self, to_user: str, content: str, long_notice: str) -> None:
        """Answer on the passive reply when it fits WeCom's text limit; a longer answer goes
        out through message/send in parts, and the reply says so (`long_notice`)."""
        if len(content.encode("utf-8")) <= TEXT_LIMIT or self.settings.agent_id is None:
            self.reply_text(to_user, _cut(content, TEXT_LIMIT))
            return
        for n, part in enumerate(_parts(content, TEXT_LIMIT)):
            await self.queue(f"answer:{self.inbox_id}:{n}", SendMessage(
                agentid=self.settings.agent_id, touser=to_user, msgtype="text",
                text=Text(content=part)), kind="operator_answer")
        self.reply_text(to_user, long_notice)

    def reply_text(self, to_user: str, content: str) -> None:
        """Answer the member's app message with a text passive reply (plaintext XML)."""
        self.reply = build_xml({
            "ToUserName": to_user,
            "FromUserName": self.settings.corp_id,
            "CreateTime": int(self.now.timestamp()),
            "MsgType": "text",
            "Content": content,
        })


TEXT_LIMIT = 2048  # bytes of a text message's content (message/send; passive replies alike)
NUMBERING_BYTES = 16  # room for "(n/N) " in front of each part


def _cut(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def _parts(text: str, limit: int) -> list[str]:
    """Whole lines per part where possible (a longer line is split), each part within `limit`
    bytes and numbered "(n/N)": parts are sent concurrently and may arrive out of order."""
    room = limit - NUMBERING_BYTES
    pieces = [piece for line in text.splitlines() for piece in _chunks(line, room)]
    parts, current = [], ""
    for piece in pieces:
        candidate = f"{current}\n{piece}" if current else piece
        if current and len(candidate.encode("utf-8")) > room:
            parts.append(current)
            candidate = piece
        current = candidate
    parts = [*parts, current] if current else parts
    return [f"({n}/{len(parts)}) {part}" for n, part in enumerate(parts, 1)]


def _chunks(line: str, limit: int) -> list[str]:
    """`line` in pieces of at most `limit` bytes, never splitting a character."""
    chunks, current, size = [], "", 0
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            chunks.append(current)
            current, size = "", 0
        current, size = current + char, size + width
    return [*chunks, current] if current or not chunks else chunks
