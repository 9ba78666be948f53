"""POST /api/funnel/events: the app reports the steps that happen before the friend add.

A batch is stored whole or not at all: one invalid event (unknown step, a channel or slot not
in sop_flows/funnel.yaml, a time without a timezone) rejects the batch with 422, so the app
can fix and resend it without working out which events landed. Resending is always safe:
each event is stored once per event_id, repeats are counted as duplicates.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from app.faces.web.apikey import require_api_key
from app.funnel import service as funnel
from app.funnel import steps
from app.funnel.flows import FunnelFlows

router = APIRouter(prefix="/api/funnel", dependencies=[Depends(require_api_key)])

MAX_EVENTS = 500
KEY_PREFIX = "app:"


class AppEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=64)
    step: str
    at: AwareDatetime
    platform_user_id: str | None = Field(None, min_length=1, max_length=64)
    channel: str | None = Field(None, min_length=1, max_length=32)
    slot: str | None = Field(None, min_length=1, max_length=32)

    @field_validator("step")
    @classmethod
    def _app_step(cls, value: str) -> str:
        if value not in steps.APP_STEPS:
            raise ValueError(f"step {value!r} is not one the app reports; use one of "
                             f"{', '.join(steps.APP_STEPS)}")
        return value


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[AppEvent] = Field(min_length=1, max_length=MAX_EVENTS)


class Stored(BaseModel):
    stored: int
    duplicates: int


@router.post("/events")
async def report_events(batch: EventBatch, request: Request) -> Stored:
    """Store the app's funnel events once each; the whole batch in one unit of work."""
    runtime = request.app.state.runtime
    _check_attribution(batch, runtime.flows.funnel)
    stored = 0
    async with runtime.db.unit_of_work() as session:
        for event in batch.events:
            if await funnel.record(session, event.step, KEY_PREFIX + event.event_id, event.at,
                                   platform_user_id=event.platform_user_id,
                                   channel=event.channel, slot=event.slot):
                stored += 1
    return Stored(stored=stored, duplicates=len(batch.events) - stored)


def _check_attribution(batch: EventBatch, declared: FunnelFlows) -> None:
    """Channels and slots must be declared: a typo would open a group of its own in reports."""
    errors = [error for n, event in enumerate(batch.events)
              if (error := _attribution_error(n, event, declared)) is not None]
    if errors:
        raise RequestValidationError(errors)


def _attribution_error(n: int, event: AppEvent, declared: FunnelFlows) -> dict[str, Any] | None:
    where: list[str | int] = ["body", "events", n]
    if event.channel is None:
        if event.slot is not None:
            return _error(where + ["slot"], "a slot needs its channel")
        return None
    channel = declared.channels.get(event.channel)
    if channel is None:
        return _error(where + ["channel"], f"unknown channel {event.channel!r}; declared: "
                                           f"{', '.join(declared.channels)}")
    if event.slot is not None and event.slot not in channel.slots:
        return _error(where + ["slot"], f"channel {event.channel!r} has no slot {event.slot!r}"
                                        f"; its slots: {', '.join(channel.slots) or 'none'}")
    return None


def _error(loc: list[str | int], message: str) -> dict[str, Any]:
    return {"loc": loc, "msg": message, "type": "value_error"}
