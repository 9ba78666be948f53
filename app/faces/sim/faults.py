"""Faults injected on request: errcodes, HTTP errors, delays, dropped connections, empty kf pages.

Rules are tried in the order they were added; the first one that matches the API path and wins
its `rate` draw applies. The draws come from one RNG seeded by SOPBOT_SIM_SEED, so a test that
makes the same calls sees the same faults.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.requests import Request


class FaultSpec(BaseModel):
    """The body of POST /sim/faults."""

    model_config = ConfigDict(extra="forbid")

    path: str = "*"  # an API path such as "externalcontact/send_welcome_msg"; shell wildcards
    errcode: int | None = None
    http_status: int | None = Field(None, ge=400, le=599)
    delay_s: float | None = Field(None, ge=0, le=120)
    drop: bool = False
    empty_page: bool = False  # kf/sync_msg only: has_more=1 with an empty msg_list
    after: bool = False  # http_status/drop after the call took effect (outcome unknown)
    rate: float = Field(1.0, ge=0, le=1)
    count: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_effect(self) -> FaultSpec:
        effects = [self.errcode is not None, self.http_status is not None, self.drop,
                   self.empty_page]
        if sum(effects) > 1:
            raise ValueError("choose one of errcode, http_status, drop, empty_page")
        if not any(effects) and self.delay_s is None:
            raise ValueError("a fault needs errcode, http_status, delay_s, drop or empty_page")
        if self.after and not (self.drop or self.http_status is not None):
            raise ValueError("after applies to drop and http_status only")
        if self.empty_page and normalize(self.path) != "kf/sync_msg":
            raise ValueError("empty_page applies to kf/sync_msg only")
        return self


def normalize(path: str) -> str:
    return path.strip().removeprefix("/").removeprefix("cgi-bin/").strip("/") or "*"


@dataclass
class Fault:
    id: int
    spec: FaultSpec
    remaining: int | None
    applied: int = 0

    def matches(self, api: str) -> bool:
        return self.remaining != 0 and fnmatchcase(api, normalize(self.spec.path))

    def describe(self) -> dict[str, Any]:
        spec = self.spec.model_dump(exclude_defaults=True)
        return {"id": self.id, **spec, "remaining": self.remaining, "applied": self.applied}


class FaultBook:
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"faults-{seed}")
        self._next_id = 1
        self.rules: list[Fault] = []

    def add(self, spec: FaultSpec) -> Fault:
        fault = Fault(self._next_id, spec, spec.count)
        self._next_id += 1
        self.rules.append(fault)
        return fault

    def clear(self) -> int:
        count, self.rules = len(self.rules), []
        return count

    def draw(self, api: str) -> Fault | None:
        """The fault for this call, if any; counts it as applied."""
        for fault in self.rules:
            if not fault.matches(api):
                continue
            if fault.spec.rate < 1 and self._rng.random() >= fault.spec.rate:
                continue
            fault.applied += 1
            if fault.remaining is not None:
                fault.remaining -= 1
            return fault
        return None


async def drop_connection(request: Request) -> None:
    """Close the TCP connection without answering, so the client sees a transport error.

    ASGI has no "drop" message. uvicorn's `receive` is a bound method of its per-request cycle,
    which holds the transport: closing it and letting the loop notice (cycle.disconnected)
    makes uvicorn skip its 500 answer. Other servers: raise, which at least breaks the answer.
    """
    cycle = getattr(request.receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError("sim fault: drop")
    transport.close()
    for _ in range(50):
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0.01)
