"""WakeLoop: a background loop of one process that does a pass when a commit-time wake-up
(app/engine/wakeups.py) says there is work, or every `sweep_s` for work another replica
announced; stopping lets the pass in hand finish within a grace period, then cancels it.

The 微信客服 reader and the chat archive reader are such loops; each says what one pass is."""

from __future__ import annotations

import asyncio
import contextlib

from app.engine.logs import get_logger

log = get_logger("sopbot.loop")


class WakeLoop:
    def __init__(self, name: str, sweep_s: float, grace_s: float, failed_event: str) -> None:
        self.loop_name, self.sweep_s, self.grace_s = name, sweep_s, grace_s
        self.failed_event = failed_event  # logged with the traceback when a pass raises
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def once(self) -> object:
        """One pass over the work there is."""
        raise NotImplementedError

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=self.loop_name)

    @property
    def alive(self) -> bool | None:
        """None when not started here; False once the loop has ended (health fails)."""
        return None if self._task is None else not self._task.done()

    def wake(self, _: object = None) -> None:
        """A wake-up: look now."""
        self._wake.set()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is None:
            return
        _, late = await asyncio.wait([self._task], timeout=self.grace_s)
        for task in late:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await self.once()
            except Exception:  # the next pass tries again; the loop itself never dies
                log.exception(self.failed_event)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.sweep_s)
