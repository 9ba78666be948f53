"""The WeCom simulator behind `sopbot sim`: a real HTTP server that plays WeCom for tests and
the demo (API with platform rules, faults, scenarios with real encrypted callbacks).

Entry point: `create_sim_app(settings, clock=None)`; state at `app.state.sim`.
"""

from app.faces.sim.clock import ManualClock, SimClock
from app.faces.sim.config import SimSettings
from app.faces.sim.core import Sim
from app.faces.sim.server import create_sim_app

__all__ = ["ManualClock", "Sim", "SimClock", "SimSettings", "create_sim_app"]
