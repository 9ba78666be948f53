"""Commit-time wake-ups: how a unit of work that wrote something tells a background loop of
this process to look now, and only once what it wrote is visible.

Writers note a wake-up in the session (`note`); when the unit of work commits, the database
hands the notes to the listeners registered here (`Wakeups.on`, wired once in
app/faces/web/main.py). Every wake-up sopbot has is listed below, so a newcomer sees in one
place what wakes what. (Deleting a verification photo once its removal has committed,
app/verify/photos.py `discard_on_commit`, is not a wake-up: it wakes no loop.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

# The most urgent outbox priority made pending (lower is more urgent): wakes the sender, its
# fast lane for a welcome. Written by app/engine/outbox/store.py.
OUTBOX_PENDING = "outbox_pending"
# A kf account has news (a kf_msg_or_event callback was recorded): wakes the kf reader.
# Written by app/kf/store.py.
KF_NEWS = "kf_news"
# The chat archive has news (a msgaudit_notify callback was recorded): wakes the archive
# reader. Written by app/archive/store.py.
ARCHIVE_NEWS = "archive_news"

Listener = Callable[[Any], None]


def note(session: AsyncSession, name: str, value: Any = True) -> None:
    """Wake `name`'s listeners with `value` once this session's unit of work commits."""
    session.info[name] = value


def noted(session: AsyncSession, name: str) -> Any:
    """What this unit of work has noted for `name` so far (None: nothing)."""
    return session.info.get(name)


class Wakeups:
    """The listeners of one process, called after every commit that noted something."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}

    def on(self, name: str, listener: Listener) -> None:
        self._listeners.setdefault(name, []).append(listener)

    def __call__(self, info: dict[str, Any]) -> None:
        for name, listeners in self._listeners.items():
            if (value := info.get(name)) is not None:
                for listener in listeners:
                    listener(value)
