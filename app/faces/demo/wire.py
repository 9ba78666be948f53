"""How the demo reaches the running service, as the outside world does: over HTTP. The app's
server calls /api with its key, members open /verify links, and people in WeChat act through
the built-in simulator's scenarios (/wecom-sim/sim/...), which send WeCom's real encrypted
callbacks. The database is only read, to know what the world cannot see (a member's pool)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from sqlalchemy import func, select

from app.engine.db import Database, set_clock, utcnow
from app.engine.inbox.models import PENDING as WAITING
from app.engine.inbox.models import InboxEvent
from app.engine.outbox.models import PENDING, OutboxMessage
from app.faces.sim.access import KEY_HEADER
from app.faces.sim.embedded import MOUNT_PATH

T = TypeVar("T")
R = TypeVar("R")
IN_FLIGHT = 8  # requests the demo keeps open at once: a busy app, not a flood


class DemoError(RuntimeError):
    """Something the demo expected did not happen; the message says what."""


class CannotStart(DemoError):
    """The demo could not begin (before the service runs, so its log has nothing)."""


@dataclass
class Wire:
    http: httpx.AsyncClient  # base URL: the service
    api_key: str
    sim_key: str  # the built-in simulator's control key
    db: Database

    async def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """/api/... with the platform's key; the JSON answer (a failure is a DemoError)."""
        answer = await self.http.request(method, path, headers={
            "Authorization": f"Bearer {self.api_key}"}, **kwargs)
        return _json(answer, f"{method} {path}")

    async def scenario(self, name: str, /, **body: Any) -> dict[str, Any]:
        """A person acts in WeChat or the WeCom client (the simulator sends the callbacks)."""
        answer = await self.http.post(f"{MOUNT_PATH}/sim/scenarios/{name}", json=body,
                                      headers=self._sim_headers)
        return dict(_json(answer, f"scenario {name}"))

    async def sim_state(self, path: str, **params: Any) -> dict[str, Any]:
        """What the simulator shows of its world on /sim/<path> (groups, archive, ...)."""
        answer = await self.http.get(f"{MOUNT_PATH}/sim/{path}", params=params,
                                     headers=self._sim_headers)
        return dict(_json(answer, f"sim {path}"))

    async def requests_to_wecom(self, path: str) -> list[dict[str, Any]]:
        """What the service sent to (the simulated) WeCom on one API path."""
        answer = await self.http.get(f"{MOUNT_PATH}/sim/requests", params={"path": path},
                                     headers=self._sim_headers)
        return list(_json(answer, "sim requests")["requests"])

    async def set_clock(self, at: datetime | None) -> None:
        """WeCom's clock and the service's: the simulated moment (or the service's now, when
        that is later), or back to now (None). Moved only once the service is idle, so no unit
        of work straddles the jump."""
        await self.quiet()
        if at is not None:
            at = max(at, utcnow())  # forward only: the quiet wait took real seconds
        set_clock(at)
        epoch = (at or datetime.now(UTC)).timestamp()
        _json(await self.http.post(f"{MOUNT_PATH}/sim/clock", json={"set_epoch_s": epoch},
                                   headers=self._sim_headers), "sim clock")

    @property
    def _sim_headers(self) -> dict[str, str]:
        return {KEY_HEADER: self.sim_key}

    async def quiet(self, timeout: float = 60.0) -> None:
        """Until the service has handled every callback and sent everything due (a row waiting
        out a retry's backoff does not count)."""
        await wait_for(self._idle, "the service done with its work", timeout)

    async def _idle(self) -> bool:
        due = utcnow() + timedelta(seconds=1)
        async with self.db.reader() as session:
            inbox = await session.scalar(select(func.count()).select_from(InboxEvent).where(
                InboxEvent.status == WAITING))
            outbox = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.status == PENDING, OutboxMessage.next_attempt_at <= due))
        return not (inbox or outbox)


def _json(answer: httpx.Response, what: str) -> Any:
    if answer.status_code >= 300:
        raise DemoError(f"{what}: HTTP {answer.status_code} {answer.text[:200]}")
    return answer.json()


async def each(work: Callable[[T], Awaitable[R]], items: Iterable[T],
               limit: int = IN_FLIGHT) -> list[R]:
    """`work` for every item, at most `limit` at a time; results in the items' order."""
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with gate:
            return await work(item)
    return list(await asyncio.gather(*(one(item) for item in items)))


async def wait_for(probe: Callable[[], Awaitable[bool]], what: str, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await probe():
        if loop.time() > deadline:
            raise DemoError(f"{what}: not reached within {timeout:.0f} s")
        await asyncio.sleep(0.05)
