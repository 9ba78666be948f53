"""sop_flows/: the YAML that drives what sopbot says and does. Loaded and validated at start.

Each file has a pydantic schema; `load_flows` reads them all so `sopbot check` and `serve`
fail on the same problems, with file and line.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, field_validator

from app.yamlconf import ConfigFileError, line_of, load_model

if TYPE_CHECKING:
    from app.calendar.flows import CalendarFlows
    from app.calendar.onboarding import Campaign
    from app.funnel.flows import FunnelFlows
    from app.groups.lifecycle import LifecycleFlows
    from app.groups.welcome_flows import GroupWelcomeFlows
    from app.kf.flows import KfFlows
    from app.routing.flows import RoutingFlows
    from app.verify.flows import VerifyFlows


def placeholders(template: str) -> set[str]:
    """The {names} a str.format template uses."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"bad template: {exc}") from None


def allow_placeholders(*allowed: str):  # type: ignore[no-untyped-def]
    """A field validator: the template may use only these {placeholders}."""

    def check(value: str) -> str:
        unknown = placeholders(value) - set(allowed)
        if unknown:
            names = ", ".join(sorted(f"{{{n}}}" for n in unknown))
            hint = ", ".join(f"{{{a}}}" for a in allowed) or "none"
            raise ValueError(f"unknown placeholder {names} (allowed: {hint})")
        return value

    return check


class _Texts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReviewTexts(_Texts):
    pending: str
    none_pending: str
    line: str
    decided: str
    not_found: str
    already_decided: str

    _pending = field_validator("pending")(allow_placeholders("count", "lines"))
    _line = field_validator("line")(allow_placeholders("id", "phone", "identity", "region"))
    _decided = field_validator("decided")(allow_placeholders("id", "status"))
    _not_found = field_validator("not_found")(allow_placeholders("id"))
    _already = field_validator("already_decided")(allow_placeholders("id", "status", "reviewer"))


class AnnounceTexts(_Texts):
    created: str
    no_groups: str

    _created = field_validator("created")(allow_placeholders("groups", "owners"))
    _none = field_validator("no_groups")(allow_placeholders("target"))


class CalendarTexts(_Texts):
    not_configured: str


class CommandTexts(_Texts):
    """sop_flows/commands.yaml: what operators read when they talk to the app."""

    help: str
    unknown_command: str
    not_operator: str
    bad_arguments: str
    sent_separately: str
    review: ReviewTexts
    announce: AnnounceTexts
    calendar: CalendarTexts

    _help = field_validator("help", "not_operator", "sent_separately")(allow_placeholders())
    _unknown = field_validator("unknown_command")(allow_placeholders("command"))
    _usage = field_validator("bad_arguments")(allow_placeholders("usage"))


@dataclass(frozen=True)
class Flows:
    commands: CommandTexts
    funnel: FunnelFlows
    verify: VerifyFlows
    routing: RoutingFlows
    kf: KfFlows
    group_welcome: GroupWelcomeFlows
    calendar: CalendarFlows
    onboarding: dict[str, Campaign]  # by name: sop_flows/onboarding_<name>.yaml
    lifecycle: LifecycleFlows


NAME = re.compile(r"[a-z0-9][a-z0-9_]*")


def _check(path: Path, problem: str | None) -> None:
    """A problem found across files, with the line of the place it names."""
    if problem:
        raise ConfigFileError(path, line_of(path, problem.split(":")[0].split(".")), problem)


def load_flows(directory: Path) -> Flows:
    """Read every flow file under `directory`; raise ConfigFileError naming file and line."""
    from app.calendar.flows import CalendarFlows, calendar_problem
    from app.calendar.onboarding import Campaign
    from app.funnel.flows import FunnelFlows  # the domain schemas build on this module
    from app.groups.lifecycle import LifecycleFlows
    from app.groups.welcome_flows import GroupWelcomeFlows, welcome_problem
    from app.kf.flows import KfFlows
    from app.routing.flows import RoutingFlows, unknown_names
    from app.verify.flows import VerifyFlows

    flows = Flows(commands=load_model(directory / "commands.yaml", CommandTexts),
                  funnel=load_model(directory / "funnel.yaml", FunnelFlows),
                  verify=load_model(directory / "verify.yaml", VerifyFlows),
                  routing=load_model(directory / "routing.yaml", RoutingFlows),
                  kf=load_model(directory / "kf.yaml", KfFlows),
                  group_welcome=load_model(directory / "group_welcome.yaml", GroupWelcomeFlows),
                  calendar=load_model(directory / "calendar.yaml", CalendarFlows),
                  onboarding={path.stem.removeprefix("onboarding_"): load_model(path, Campaign)
                              for path in sorted(directory.glob("onboarding_*.yaml"))},
                  lifecycle=load_model(directory / "lifecycle.yaml", LifecycleFlows))
    problem = unknown_names(flows.routing, set(flows.funnel.channels), set(flows.verify.regions))
    if problem:
        raise ConfigFileError(directory / "routing.yaml", None, problem)
    _check(directory / "calendar.yaml",
           calendar_problem(flows.calendar, set(flows.routing.segments)))
    for name, campaign in flows.onboarding.items():
        if not NAME.fullmatch(name) or len(name) > 32:
            raise ConfigFileError(directory / f"onboarding_{name}.yaml", None,
                                  f"campaign name {name!r} (from the file name): 1-32 of "
                                  f"[a-z0-9_], starting with a letter or digit")
        unknown = [s for s in campaign.segments if s not in flows.routing.segments]
        if unknown:
            _check(directory / f"onboarding_{name}.yaml",
                   f"segments: unknown segment {unknown[0]!r} (sop_flows/routing.yaml)")
    labels = {name: segment.label for name, segment in flows.routing.segments.items()}
    problem = welcome_problem(flows.group_welcome, labels)
    if problem:
        path = directory / "group_welcome.yaml"
        raise ConfigFileError(path, line_of(path, problem.split(":")[0].split(".")), problem)
    return flows
