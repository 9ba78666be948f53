"""sop_flows/routing.yaml: segments and the rules that put an approved member into one.

A rule names an identity type, optionally channels and regions, and a segment of that identity
type (a member is never routed into another identity type's segment). Per identity type, the
rule without channels and regions is the default; the others are exceptions. Two rules that
would both match some (channel, region) with the same specificity overlap, and an identity type
(other than consumer, who is never routed) without a default leaves cases uncovered: both are
load errors, so `sopbot check` names them.
"""

from __future__ import annotations

from itertools import combinations
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.engine.placeholders import allow_placeholders
from app.funnel.flows import NAME, FunnelFlows
from app.members.models import IDENTITY_TYPES
from app.verify.flows import VerifyFlows

CONSUMER = "consumer"
ROUTED_TYPES = tuple(t for t in IDENTITY_TYPES if t != CONSUMER)
STAFF_PLACEHOLDERS = ("segment", "identity", "region", "channel", "phone", "external_userid",
                      "group", "group_qr")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Segment(Strict):
    label: str = Field(min_length=1)
    identity_type: str
    ideal_size: int = Field(ge=2, le=500)
    room_name: str = Field(min_length=1, max_length=40)  # auto-created groups' name prefix

    @field_validator("identity_type")
    @classmethod
    def _routed_type(cls, value: str) -> str:
        if value not in ROUTED_TYPES:
            raise ValueError(f"identity_type {value!r}: one of {', '.join(ROUTED_TYPES)}")
        return value


class Rule(Strict):
    identity_type: str
    channels: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    segment: str

    @property
    def specificity(self) -> int:
        return bool(self.channels) + bool(self.regions)

    def matches(self, channel: str, region: str | None) -> bool:
        return ((not self.channels or channel in self.channels)
                and (not self.regions or region in self.regions))


class RoutingTexts(Strict):
    # The app message the member's staff member gets when the member is routed.
    staff_routed: str
    # Stands for {group} and {group_qr} while the segment has no group pool yet.
    no_group: str

    _staff = field_validator("staff_routed")(allow_placeholders(*STAFF_PLACEHOLDERS))
    _no_group = field_validator("no_group")(allow_placeholders())


class TagGroups(Strict):
    """The names of the corp tag groups an approved member is tagged in (`sopbot tags sync`)."""

    identity: str = Field("商家身份", min_length=1, max_length=30)
    channel: str = Field("来源渠道", min_length=1, max_length=30)
    region: str = Field("所在地区", min_length=1, max_length=30)
    # The group of the `KOC` tag (sop_flows/koc.yaml: promoted members carry it).
    koc: str = Field("社群角色", min_length=1, max_length=30)


class RoutingFlows(Strict):
    segments: dict[str, Segment] = Field(min_length=1)
    rules: tuple[Rule, ...] = Field(min_length=1)
    texts: RoutingTexts
    tag_groups: TagGroups = TagGroups()

    def segment_labels(self) -> dict[str, str]:
        """Segment name → label, in the file's order."""
        return {name: segment.label for name, segment in self.segments.items()}

    @field_validator("segments")
    @classmethod
    def _segment_names(cls, value: dict[str, Segment]) -> dict[str, Segment]:
        for name in value:
            if not NAME.fullmatch(name) or len(name) > 30:
                raise ValueError(f"segment {name!r}: lower-case letters, digits and _, ≤30")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RoutingFlows:
        for n, rule in enumerate(self.rules):
            _check_rule(n, rule, self.segments)
        for (i, a), (j, b) in combinations(enumerate(self.rules), 2):
            if a.identity_type == b.identity_type and _overlap(a, b):
                raise ValueError(f"rules.{j}: overlaps rules.{i} (both match {_example(a, b)})")
        covered = {r.identity_type for r in self.rules if r.specificity == 0}
        for identity in ROUTED_TYPES:
            if identity not in covered:
                raise ValueError(f"rules: no default rule (without channels and regions) for "
                                 f"identity_type {identity}: some of its members would have "
                                 f"no segment")
        return self

    def segment_for(self, identity_type: str, channel: str, region: str | None) -> str | None:
        """The most specific matching rule's segment; None for a consumer (never routed)."""
        found = [r for r in self.rules
                 if r.identity_type == identity_type and r.matches(channel, region)]
        return max(found, key=lambda r: r.specificity).segment if found else None


def _check_rule(n: int, rule: Rule, segments: dict[str, Segment]) -> None:
    segment = segments.get(rule.segment)
    if segment is None:
        raise ValueError(f"rules.{n}: unknown segment {rule.segment!r}")
    if rule.identity_type not in ROUTED_TYPES:
        raise ValueError(f"rules.{n}: identity_type {rule.identity_type!r}: one of "
                         f"{', '.join(ROUTED_TYPES)}")
    if segment.identity_type != rule.identity_type:
        raise ValueError(f"rules.{n}: segment {rule.segment!r} is for {segment.identity_type}, "
                         f"not {rule.identity_type}")


def _overlap(a: Rule, b: Rule) -> bool:
    """Both match some (channel, region) and neither is more specific than the other."""
    return (a.specificity == b.specificity and _meet(a.channels, b.channels)
            and _meet(a.regions, b.regions))


def _meet(x: tuple[str, ...], y: tuple[str, ...]) -> bool:
    return not x or not y or bool(set(x) & set(y))


def _example(a: Rule, b: Rule) -> str:
    """A (channel, region) both rules match, in words."""
    return f"{a.identity_type} from {_common(a.channels, b.channels, 'any channel')} " \
           f"in {_common(a.regions, b.regions, 'any region')}"


def _common(x: tuple[str, ...], y: tuple[str, ...], anything: str) -> str:
    shared = sorted(set(x) & set(y)) if x and y else sorted(set(x) | set(y))
    return shared[0] if shared else anything


def unknown_names(routing: RoutingFlows, channels: set[str], regions: set[str]) -> str | None:
    """What a rule names that the other flow files do not declare, or None."""
    for n, rule in enumerate(routing.rules):
        for channel in rule.channels:
            if channel not in channels:
                return f"rules.{n}: unknown channel {channel!r} (sop_flows/funnel.yaml)"
        for region in rule.regions:
            if region not in regions:
                return f"rules.{n}: unknown region {region!r} (sop_flows/verify.yaml)"
    return None


class RoutingSources(Protocol):
    """What routing reads of the flows (app.flows.Flows has it all): segments and texts,
    channel labels, identity types and regions."""

    @property
    def routing(self) -> RoutingFlows: ...
    @property
    def funnel(self) -> FunnelFlows: ...
    @property
    def verify(self) -> VerifyFlows: ...
