"""Control endpoints under /sim/: inspection, faults, the clock, token invalidation.

These are the simulator's own API (plain JSON, normal HTTP statuses), not WeCom's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.faces.sim import archive, tokens
from app.faces.sim import groups as group_rules
from app.faces.sim.core import Sim
from app.faces.sim.faults import FaultSpec
from app.faces.sim.summary import summary

router = APIRouter(prefix="/sim")


def _sim(request: Request) -> Sim:
    return request.app.state.sim


class ClockChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    advance_s: float | None = Field(None, ge=0)
    set_epoch_s: float | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ClockChange:
        if (self.advance_s is None) == (self.set_epoch_s is None):
            raise ValueError("give advance_s or set_epoch_s")
        return self


class TokenInvalidation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    errcode: int = Field(42001)

    @model_validator(mode="after")
    def _known(self) -> TokenInvalidation:
        if self.errcode not in (40014, 42001):
            raise ValueError("errcode must be 40014 or 42001")
        return self


@router.get("/requests")
async def list_requests(request: Request, path: str | None = None,
                        since: int = 0) -> dict[str, Any]:
    sim = _sim(request)
    return {"requests": sim.requests.select(path, since), "last_seq": sim.requests.last_seq}


@router.delete("/requests")
async def clear_requests(request: Request) -> dict[str, Any]:
    sim = _sim(request)
    sim.requests.clear()
    return {"cleared": True, "last_seq": sim.requests.last_seq}


@router.get("/state")
async def state(request: Request) -> dict[str, Any]:
    return summary(_sim(request).world)


@router.get("/archive")
async def archive_records(request: Request, after: int = 0) -> dict[str, Any]:
    """The chat archive's records after seq `after`, decoded (poisoned ones as they are)."""
    records = _sim(request).world.archive
    return {"records": [archive.decoded(r) for r in records[max(after, 0):]],
            "last_seq": len(records)}


@router.get("/groups")
async def live_groups(request: Request) -> dict[str, Any]:
    """Live customer groups with their owner and members (who, staff or customer, joined
    when): what a story of group talk needs to know."""
    return {"groups": group_rules.live_groups(_sim(request).world)}


@router.get("/callbacks")
async def callbacks(request: Request, kind: str | None = None) -> dict[str, Any]:
    records = _sim(request).callbacks.records
    return {"callbacks": [r for r in records if kind is None or r["kind"] == kind]}


@router.post("/faults")
async def add_fault(request: Request, spec: FaultSpec) -> dict[str, Any]:
    return {"fault": _sim(request).faults.add(spec).describe()}


@router.get("/faults")
async def list_faults(request: Request) -> dict[str, Any]:
    return {"faults": [f.describe() for f in _sim(request).faults.rules]}


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, Any]:
    return {"cleared": _sim(request).faults.clear()}


@router.get("/clock")
async def get_clock(request: Request) -> dict[str, Any]:
    clock = _sim(request).clock
    return {"now": clock.now(), "offset_s": clock.offset_s}


@router.post("/clock")
async def move_clock(request: Request, change: ClockChange) -> dict[str, Any]:
    clock = _sim(request).clock
    if change.advance_s is not None:
        clock.advance(change.advance_s)
    else:
        clock.set(change.set_epoch_s or 0.0)
    return {"now": clock.now(), "offset_s": clock.offset_s}


@router.post("/tokens/invalidate")
async def invalidate_tokens(request: Request, body: TokenInvalidation) -> dict[str, Any]:
    """Every live access_token answers body.errcode from now on; gettoken issues new ones."""
    return {"invalidated": tokens.invalidate_all(_sim(request).world, body.errcode),
            "errcode": body.errcode}


@router.post("/verify_url")
async def verify_url(request: Request) -> dict[str, Any]:
    """Check the bot URL as WeCom does when an admin saves it (GET with echostr)."""
    return await _sim(request).callbacks.verify_url()
