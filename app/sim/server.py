"""create_sim_app(): the simulator as a FastAPI app (WeCom API + /sim/ control endpoints)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from app.logs import get_logger
from app.sim import api, control, scenarios
from app.sim.access import require_control_key, require_loopback_when_asked
from app.sim.clock import SimClock
from app.sim.config import SimSettings
from app.sim.core import Sim
from app.sim.state import ScenarioError

log = get_logger("sopbot.sim")


def create_sim_app(settings: SimSettings, clock: SimClock | None = None) -> FastAPI:
    """The simulator; its state is `app.state.sim` (a `Sim`), in memory, fresh per app."""
    sim = Sim(settings, clock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("sim_started", corp_id=settings.corp_id, bot_url=settings.bot_url)
        try:
            yield
        finally:
            await sim.aclose()

    app = FastAPI(title="sopbot WeCom simulator", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.sim = sim
    app.include_router(api.router, dependencies=[Depends(require_loopback_when_asked)])
    # Everything but WeCom's own API is the operator's remote control: behind the key.
    keyed = [Depends(require_control_key)]
    app.include_router(control.router, dependencies=keyed)
    app.include_router(scenarios.router, dependencies=keyed)
    app.add_exception_handler(ScenarioError, scenarios.scenario_error)
    return app
