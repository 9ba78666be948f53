"""Events sopbot does not understand: kept in the inbox, logged so someone can look."""

from __future__ import annotations

from typing import Any

from app.engine.bot.context import Ctx
from app.engine.bot.router import Router
from app.engine.wecom.events import UnknownEvent


async def log_unknown_event(event: UnknownEvent, ctx: Ctx[Any]) -> None:
    """An unknown or malformed payload is stored as received and logged with the reason."""
    ctx.log.warning("unknown_event", reason=event.reason, msg_type=event.msg_type)


def router() -> Router:
    unknown = Router("unknown")
    unknown.add(UnknownEvent, log_unknown_event)
    return unknown
