"""sop_flows/lifecycle.yaml: when a group counts as weak, what its migration says, and what
people are told when a segment's pool runs out of groups with room (app/groups/lifecycle.py,
app/groups/pool_alerts.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.engine.placeholders import allow_placeholders

POOL_PLACEHOLDERS = ("segment", "group", "members", "ideal", "next_name")


class PoolEmptyTexts(BaseModel):
    """When a segment's pool has no group with room (app/groups/pool_alerts.py): the app
    message to the operators and the task for the owner of the segment's newest group."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    operators: str = Field(min_length=1)
    owner_task: str = Field(min_length=1)

    _texts = field_validator("operators", "owner_task")(allow_placeholders(*POOL_PLACEHOLDERS))


class LifecycleFlows(BaseModel):
    """sop_flows/lifecycle.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strong_days: int = Field(30, ge=1, le=365)  # "strong" for this long after filling
    # The signals counted; a group is judged weak only this long after its strong month.
    window_days: int = Field(14, ge=1, le=90)
    zombie_health: int = Field(30, ge=0, le=100)  # below this, and no join in quiet_days
    quiet_days: int = Field(14, ge=1, le=365)
    # The invitation the zombie group's still-active members get (a mass task from its
    # owner), and the owner's task. Placeholders: {group}, {target} (group names), {qr}.
    invitation: str = Field(min_length=1)
    owner_task: str = Field(min_length=1)

    # A segment whose pool has no group with room: what the operators and the owner are told.
    pool_empty: PoolEmptyTexts

    _invite = field_validator("invitation", "owner_task")(allow_placeholders(
        "group", "target", "qr"))
