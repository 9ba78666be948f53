"""The notice an outbox action leaves for the page its POST redirects to (POST-redirect-GET).

The flash cookie (app/faces/console/flash.py) carries the action and ids only; the page words them
from the rows as they are when it loads, so a row the action left alone is explained by what
became of it: dropped by an operator (with their reason), or no longer dead or unknown."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.outbox.models import OutboxMessage
from app.faces.console import flash
from app.faces.console.pages.outbox_view import row_view
from app.faces.console.params import ids_of, possible_row_id

PAGE = "outbox"  # the flash cookie's tag for this page's notices
RETRY, DROP = "retry", "drop"
DONE = {RETRY: "已重新排队 {n} 条，发送器会立即发送。", DROP: "已放弃 {n} 条，原因已记录。"}
NONE_DONE = {RETRY: "没有重新排队任何消息。", DROP: "没有放弃任何消息。"}


def payload(action: str, asked: list[int], done: list[int]) -> dict[str, Any]:
    return {"a": action, "done": done, "left": sorted(set(asked) - set(done))}


def take(request: Request, operator: str) -> dict[str, Any] | None:
    """The outcome left for this page (one of a known action)."""
    found = flash.take(request, operator, PAGE)
    return found if found and found.get("a") in DONE else None


async def text(session: AsyncSession, outcome: dict[str, Any]) -> str:
    action, done = outcome["a"], ids_of(outcome, "done")
    said = DONE[action].format(n=len(done)) if done else NONE_DONE[action]
    return said + await _left_alone(session, ids_of(outcome, "left"))


async def _left_alone(session: AsyncSession, ids: list[int]) -> str:
    """Why each row the action asked for was left as it was."""
    found = await session.scalars(select(OutboxMessage).where(
        OutboxMessage.id.in_([n for n in ids if possible_row_id(n)])))
    dropped = {v.id: v.reason for v in map(row_view, found) if v.dropped}
    said = [f"#{n} 已被放弃（{reason}），未改动。" for n, reason in sorted(dropped.items())]
    if others := [n for n in ids if n not in dropped]:
        listed = "、".join(f"#{n}" for n in others)
        said.append(f"{listed} 已不是失败或结果未知（可能已被他人处理），未改动。")
    return "".join(said)
