"""sop_flows/: the YAML that drives what sopbot says and does. Loaded and validated at start.

Each file has a pydantic schema; `load_flows` reads them all so `sopbot check` and `serve`
fail on the same problems, with file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, field_validator

from app.engine.placeholders import allow_placeholders
from app.engine.yamlconf import ConfigFileError, combined, line_of, load_model

if TYPE_CHECKING:
    from app.archive.flows import GroupRulesFlows
    from app.calendar.flows import CalendarFlows
    from app.calendar.onboarding import Campaign
    from app.calendar.talks import TalkFlows
    from app.funnel.flows import FunnelFlows
    from app.groups.lifecycle_flows import LifecycleFlows
    from app.groups.welcome_flows import GroupWelcomeFlows
    from app.kf.flows import KfFlows
    from app.koc.flows import KocFlows
    from app.koc.page_texts import KocPages
    from app.routing.flows import RoutingFlows
    from app.verify.flows import VerifyFlows


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
    held: str
    scheduled: str
    reminded: str
    not_held: str
    no_agent: str

    _created = field_validator("created", "reminded")(allow_placeholders("groups", "owners"))
    _none = field_validator("no_groups")(allow_placeholders("target"))
    _held = field_validator("held")(allow_placeholders("id", "count", "names", "total"))
    _scheduled = field_validator("scheduled")(allow_placeholders("id", "groups", "owners",
                                                                 "day", "time"))
    _not_held = field_validator("not_held")(allow_placeholders("id"))
    _no_agent = field_validator("no_agent")(allow_placeholders())


class CalendarTexts(_Texts):
    not_configured: str


class KocCommandTexts(_Texts):
    """The /koc command's texts; `statuses` and `reasons` name a referral's status and reason
    (app/koc/referrals.py) for operators."""

    not_configured: str
    stats: str
    top_line: str
    no_top: str
    flagged: str
    flagged_line: str
    none_flagged: str
    referral_decided: str
    referral_not_flagged: str
    reward_approved: str
    reward_declined: str
    reward_not_waiting: str
    statuses: dict[str, str]
    reasons: dict[str, str]

    _plain = field_validator("not_configured", "no_top", "none_flagged")(allow_placeholders())
    _stats = field_validator("stats")(allow_placeholders(
        "month", "recommenders", "referrals", "pending", "credited", "rejected",
        "flagged_month", "not_first", "credits", "flagged", "earned", "top"))
    _top = field_validator("top_line")(allow_placeholders("place", "name", "count"))
    _flagged = field_validator("flagged")(allow_placeholders("count", "lines"))
    _line = field_validator("flagged_line")(allow_placeholders(
        "id", "recommender", "referee", "reason", "at"))
    _decided = field_validator("referral_decided")(allow_placeholders("id", "status"))
    _ids = field_validator("referral_not_flagged", "reward_not_waiting")(
        allow_placeholders("id"))
    _rewards = field_validator("reward_approved", "reward_declined")(
        allow_placeholders("id", "label"))

    @field_validator("statuses")
    @classmethod
    def _statuses(cls, value: dict[str, str]) -> dict[str, str]:
        from app.koc.models import CREDITED, FLAGGED, PENDING, REJECTED

        return _all_named(value, (CREDITED, REJECTED, FLAGGED, PENDING))

    @field_validator("reasons")
    @classmethod
    def _reasons(cls, value: dict[str, str]) -> dict[str, str]:
        from app.koc.referrals import REASONS

        return _all_named(value, REASONS)


def _all_named(value: dict[str, str], known: tuple[str, ...]) -> dict[str, str]:
    """Every known key named, no other key, no empty name."""
    missing, unknown = set(known) - set(value), set(value) - set(known)
    if missing or unknown:
        raise ValueError(f"missing {sorted(missing)}, unknown {sorted(unknown)} "
                         f"(use {', '.join(known)})")
    if any(not name.strip() for name in value.values()):
        raise ValueError("a name is empty")
    return value


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
    koc: KocCommandTexts

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
    talks: TalkFlows  # sop_flows/talks.yaml (none declared when the file is absent)
    # sop_flows/group_rules.yaml (no violation rules, default settings when it is absent)
    group_rules: GroupRulesFlows
    # sop_flows/koc.yaml: the recommender programme; None (no programme) when it is absent
    koc: KocFlows | None = None
    # sop_flows/koc_pages.yaml: the recommenders' own pages (checked with koc.yaml)
    koc_pages: KocPages | None = None


M = TypeVar("M", bound=BaseModel)
NAME = re.compile(r"[a-z0-9][a-z0-9_]*")


def _problem(path: Path, problem: str | None) -> list[ConfigFileError]:
    """A problem found across files, with the line of the place it names."""
    if not problem:
        return []
    return [ConfigFileError(path, line_of(path, problem.split(":")[0].split(".")), problem)]


class _Loader:
    """Loads every file and keeps every problem, so one run of `sopbot check` names them all;
    a check across files runs only when the files it reads loaded."""

    def __init__(self) -> None:
        self.errors: list[ConfigFileError] = []

    def load(self, path: Path, model: type[M]) -> M | None:
        try:
            return load_model(path, model)
        except ConfigFileError as exc:
            self.errors.append(exc)
            return None

    def add(self, found: list[ConfigFileError]) -> None:
        self.errors.extend(found)


def load_flows(directory: Path) -> Flows:
    """Read every flow file under `directory`; raise ConfigFileError naming file and line (a
    ConfigFileErrors naming each problem when there are several)."""
    from app.archive.flows import GroupRulesFlows
    from app.calendar.flows import CalendarFlows
    from app.calendar.onboarding import Campaign
    from app.calendar.talks import TalkFlows
    from app.funnel.flows import FunnelFlows  # the domain schemas build on this module
    from app.groups.lifecycle_flows import LifecycleFlows
    from app.groups.welcome_flows import GroupWelcomeFlows
    from app.kf.flows import KfFlows
    from app.koc.flows import KocFlows
    from app.koc.page_texts import KocPages
    from app.routing.flows import RoutingFlows
    from app.verify.flows import VerifyFlows

    loader = _Loader()
    parts = {"commands": loader.load(directory / "commands.yaml", CommandTexts),
             "funnel": loader.load(directory / "funnel.yaml", FunnelFlows),
             "verify": loader.load(directory / "verify.yaml", VerifyFlows),
             "routing": loader.load(directory / "routing.yaml", RoutingFlows),
             "kf": loader.load(directory / "kf.yaml", KfFlows),
             "group_welcome": loader.load(directory / "group_welcome.yaml", GroupWelcomeFlows),
             "calendar": loader.load(directory / "calendar.yaml", CalendarFlows),
             "onboarding": {path.stem.removeprefix("onboarding_"): loader.load(path, Campaign)
                            for path in sorted(directory.glob("onboarding_*.yaml"))},
             "lifecycle": loader.load(directory / "lifecycle.yaml", LifecycleFlows),
             "talks": loader.load(directory / "talks.yaml", TalkFlows)
             if (directory / "talks.yaml").exists() else TalkFlows(),
             "group_rules": loader.load(directory / "group_rules.yaml", GroupRulesFlows)
             if (directory / "group_rules.yaml").exists() else GroupRulesFlows(),
             "koc": loader.load(directory / "koc.yaml", KocFlows)
             if (directory / "koc.yaml").exists() else None,
             # With the programme, its member pages need their texts.
             "koc_pages": loader.load(directory / "koc_pages.yaml", KocPages)
             if (directory / "koc.yaml").exists() else None}
    loader.add(_across_files(directory, parts))
    if loader.errors:
        raise combined(loader.errors)
    return Flows(**parts)  # type: ignore[arg-type]  # every part loaded: no error


def _across_files(directory: Path, parts: dict[str, Any]) -> list[ConfigFileError]:
    from app.calendar.flows import calendar_problem
    from app.calendar.talks import talks_problem
    from app.groups.welcome_flows import welcome_problem
    from app.koc.flows import koc_problem
    from app.routing.flows import unknown_names

    found: list[ConfigFileError] = []
    routing, funnel, verify = parts["routing"], parts["funnel"], parts["verify"]
    if routing and funnel and verify:
        problem = unknown_names(routing, set(funnel.channels), set(verify.regions))
        if problem:
            found.append(ConfigFileError(directory / "routing.yaml", None, problem))
    if routing and parts["calendar"]:
        found += _problem(directory / "calendar.yaml",
                          calendar_problem(parts["calendar"], set(routing.segments)))
    if routing and parts["calendar"] and parts["talks"]:
        found += _problem(directory / "talks.yaml", talks_problem(
            parts["talks"], set(routing.segments), parts["calendar"]))
    for name, campaign in parts["onboarding"].items():
        found += _campaign_problems(directory / f"onboarding_{name}.yaml", name, campaign,
                                    routing)
    if parts["koc"] and funnel and parts["calendar"]:
        found += _problem(directory / "koc.yaml", koc_problem(parts["koc"], funnel,
                                                               parts["calendar"]))
    if routing and parts["group_welcome"]:
        found += _problem(directory / "group_welcome.yaml",
                          welcome_problem(parts["group_welcome"], routing.segment_labels()))
    return found


def _campaign_problems(path: Path, name: str, campaign: Campaign | None,
                       routing: RoutingFlows | None) -> list[ConfigFileError]:
    if not NAME.fullmatch(name) or len(name) > 32:
        return [ConfigFileError(path, None, f"campaign name {name!r} (from the file name): 1-32 "
                                            f"of [a-z0-9_], starting with a letter or digit")]
    if campaign is None or routing is None:
        return []
    unknown = [s for s in campaign.segments if s not in routing.segments]
    return _problem(path, f"segments: unknown segment {unknown[0]!r} (sop_flows/routing.yaml)"
                    if unknown else None)
