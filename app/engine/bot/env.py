"""Env: what a behaviour's intake, settle hooks, kf page steps and jobs are built with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from app.engine.config import Settings
from app.engine.db import Database, utcnow
from app.engine.wecom.client import WeComClient

# The loaded sop_flows (app.flows.Flows, above the engine): handlers name it, the engine
# only carries it.
F = TypeVar("F")


@dataclass(frozen=True)
class Env(Generic[F]):
    """One per process, built at start; jobs receive it each time they run."""

    settings: Settings
    flows: F
    db: Database
    wecom: WeComClient | None = None  # None in tests that never reach WeCom
    clock: Callable[[], datetime] = utcnow
