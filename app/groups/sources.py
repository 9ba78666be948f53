"""What the groups domain reads of the flows (app.flows.Flows has it all), named here so the
domain depends on the parts it reads, not on the whole that sits above it."""

from __future__ import annotations

from typing import Protocol

from app.groups.lifecycle_flows import LifecycleFlows
from app.groups.welcome_flows import GroupWelcomeFlows
from app.routing.flows import RoutingFlows


class GroupSources(Protocol):
    @property
    def routing(self) -> RoutingFlows: ...
    @property
    def lifecycle(self) -> LifecycleFlows: ...
    @property
    def group_welcome(self) -> GroupWelcomeFlows: ...
