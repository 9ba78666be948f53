"""create_sim_app(): the simulator as a FastAPI app (WeCom API + /sim/ control endpoints)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from app.engine.logs import get_logger
from app.faces.sim import api, control, platform, scenarios
from app.faces.sim.access import SimAccess
from app.faces.sim.clock import SimClock
from app.faces.sim.config import SimSettings
from app.faces.sim.core import Sim
from app.faces.sim.state import ScenarioError
from app.faces.web.http_errors import validation_error

log = get_logger("sopbot.sim")


def create_sim_app(settings: SimSettings, clock: SimClock | None = None, *,
                   loopback_api: bool = False) -> FastAPI:
    """The simulator; its state is `app.state.sim` (a `Sim`), in memory, fresh per app.
    `loopback_api`: its WeCom API answers only this machine (built into the service)."""
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
    app.include_router(api.router)
    app.include_router(control.router)
    app.include_router(scenarios.router)
    app.include_router(platform.router)  # the platform's server: the reward webhook
    # Everything but WeCom's own API is the operator's remote control: behind the key.
    app.add_middleware(SimAccess, sim=sim, loopback_api=loopback_api)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ScenarioError, scenarios.scenario_error)
    return app
