"""`Sim`: one simulated WeCom — the world, its clock, faults, request log and callback sender.

It hangs on `app.state.sim`; tests and the demo reach every part through it.
"""

from __future__ import annotations

from app.faces.sim.access import new_key
from app.faces.sim.callbacks import CallbackSender
from app.faces.sim.clock import SimClock
from app.faces.sim.config import SimSettings
from app.faces.sim.faults import FaultBook
from app.faces.sim.platform import RewardInbox
from app.faces.sim.recorder import RequestLog
from app.faces.sim.state import World


class Sim:
    def __init__(self, settings: SimSettings, clock: SimClock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SimClock()
        self.world = World(settings, self.clock)
        self.faults = FaultBook(settings.seed)
        self.requests = RequestLog()
        self.callbacks = CallbackSender(settings, self.clock)
        secret = settings.koc_webhook_secret
        self.rewards = RewardInbox(secret.get_secret_value() if secret else None)
        key = settings.control_key
        self.control_key = key.get_secret_value() if key is not None else new_key()

    def dispatch_callbacks(self) -> list[dict[str, object]]:
        """Send what the last call queued, in the background (API calls never wait for them)."""
        return [self.callbacks.send_background(p) for p in self.world.take_callbacks()]

    async def aclose(self) -> None:
        await self.callbacks.aclose()
