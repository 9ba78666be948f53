"""sop_flows/funnel.yaml: channels, ad slots, and the welcome each one gets.

Every (channel, slot) pair gets one 联系我 code whose `state` is "<channel>.<slot>" (or just
"<channel>" for a channel without slots), so the friend-add callback says where the member came
from. The welcome is the first variant that matches the member's channel and slot, most specific
first, falling back to `welcome.default`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.engine.placeholders import allow_placeholders
from app.engine.wecom.api_base import Link

NAME = re.compile(r"[a-z][a-z0-9_]*")
MAX_STATE = 30  # WeCom's limit on a 联系我 state
WELCOME_PLACEHOLDERS = ("verify_url", "channel", "slot")
NO_WELFARE = "none"  # a variant's `welfare: none`: send it without the default's card


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Channel(Strict):
    label: str = Field(min_length=1)
    # name → the label reports show (a plain list of names is taken too: each its own label).
    slots: dict[str, str] = Field(default_factory=dict)
    # The staff members the channel's codes hand new friends to (type 2 when several).
    staff: tuple[str, ...] = Field(min_length=1, max_length=100)
    # Recommenders' channel (sop_flows/koc.yaml): no shared code; each recommender's own code
    # has the state "<channel>.<their id>", and every such add counts here.
    referral: bool = False

    @model_validator(mode="after")
    def _referral_has_no_slots(self) -> Channel:
        if self.referral and self.slots:
            raise ValueError("a referral channel has no slots (each recommender's code is one)")
        return self

    @field_validator("slots", mode="before")
    @classmethod
    def _slot_list(cls, value: object) -> object:
        if not isinstance(value, list | tuple):
            return value
        if len(set(value)) != len(value):
            raise ValueError("a slot is listed twice")
        return {slot: slot for slot in value}

    @field_validator("slots")
    @classmethod
    def _slot_names(cls, value: dict[str, str]) -> dict[str, str]:
        for slot, label in value.items():
            if not NAME.fullmatch(slot):
                raise ValueError(f"slot {slot!r}: use lower-case letters, digits and _")
            if not label.strip():
                raise ValueError(f"slot {slot!r}: its label is empty")
        return value


class Welcome(Strict):
    """Greeting text (≤4000 bytes once filled in) and an optional welfare link card."""

    text: str = Field(min_length=1)
    welfare: Link | None = None

    _text = field_validator("text")(allow_placeholders(*WELCOME_PLACEHOLDERS))


class Variant(Welcome):
    # Not given: the default's welfare; NO_WELFARE: none at all (`sopbot check` warns).
    # Wider than a Welcome's welfare (it may say "none"), hence the ignore.
    welfare: Link | Literal["none"] | None = None  # type: ignore[assignment]
    channel: str
    slot: str | None = None

    @model_validator(mode="after")
    def _welfare_said(self) -> Variant:
        # An empty `welfare:` reads as "none" to a person but as "not given" here: ask.
        if "welfare" in self.model_fields_set and self.welfare is None:
            raise ValueError("welfare is empty: leave it out to send the default's welfare, "
                             "or say `welfare: none` to send none")
        return self

    @property
    def where(self) -> str:
        return state_of(self.channel, self.slot)


class Welcomes(Strict):
    default: Welcome
    variants: tuple[Variant, ...] = ()

    def resolve(self, variant: Variant) -> Welcome:
        """The welcome a variant sends: its text, and its welfare or else the default's."""
        welfare = self.default.welfare if variant.welfare is None else variant.welfare
        # Built from validated parts, so construct without validating again (the hot path).
        return Welcome.model_construct(text=variant.text,
                                       welfare=welfare if isinstance(welfare, Link) else None)

    def welfare_notes(self) -> list[str]:
        """One line per welcome that goes out without a welfare card, for `sopbot check`."""
        notes = [f"welcome variant {v.where} sends no welfare (it says `welfare: none`)"
                 for v in self.variants if v.welfare == NO_WELFARE]
        if self.default.welfare is None:
            notes.insert(0, "welcome.default has no welfare, so neither has a variant that "
                            "declares none of its own")
        return notes


class FunnelFlows(Strict):
    # Where a friend add with an empty or unknown state is counted.
    default_channel: str
    channels: dict[str, Channel] = Field(min_length=1)
    welcome: Welcomes

    @field_validator("channels")
    @classmethod
    def _channel_names(cls, value: dict[str, Channel]) -> dict[str, Channel]:
        for name, channel in value.items():
            if not NAME.fullmatch(name):
                raise ValueError(f"channel {name!r}: use lower-case letters, digits and _")
            for slot in channel.slots or (None,):
                if len(state_of(name, slot)) > MAX_STATE:
                    raise ValueError(f"channel {name!r} slot {slot!r}: state "
                                     f"{state_of(name, slot)!r} is over {MAX_STATE} characters")
        return value

    @model_validator(mode="after")
    def _references(self) -> FunnelFlows:
        if self.default_channel not in self.channels:
            raise ValueError(f"default_channel {self.default_channel!r} is not a channel")
        for n, variant in enumerate(self.welcome.variants):
            channel = self.channels.get(variant.channel)
            if channel is None:
                raise ValueError(f"welcome.variants.{n}: unknown channel {variant.channel!r}")
            if variant.slot is not None and variant.slot not in channel.slots:
                raise ValueError(f"welcome.variants.{n}: channel {variant.channel!r} has no "
                                 f"slot {variant.slot!r}")
        return self

    def codes(self) -> list[tuple[str, str | None]]:
        """Every (channel, slot) that gets a 联系我 code, in declaration order."""
        return [(name, slot) for name, channel in self.channels.items() if not channel.referral
                for slot in (channel.slots or (None,))]

    def attribute(self, state: str) -> tuple[str, str | None, bool]:
        """(channel, slot, known) for a friend add's state; unknown → the default channel."""
        channel, _, slot = state.partition(".")
        declared = self.channels.get(channel)
        if declared is not None and declared.referral:
            return channel, None, bool(slot)
        if declared is not None and (slot in declared.slots if slot else not declared.slots):
            return channel, slot or None, True
        return self.default_channel, None, False

    def channel_labels(self) -> dict[str, str]:
        return {name: channel.label for name, channel in self.channels.items()}

    def slot_labels(self) -> dict[str, str]:
        """slot → label; a slot name two channels share takes its first declaration's."""
        labels: dict[str, str] = {}
        for channel in self.channels.values():
            for slot, label in channel.slots.items():
                labels.setdefault(slot, label)
        return labels

    def welcome_for(self, channel: str, slot: str | None) -> Welcome:
        exact = [v for v in self.welcome.variants if (v.channel, v.slot) == (channel, slot)]
        broad = [v for v in self.welcome.variants if v.channel == channel and v.slot is None]
        variant = exact[0] if exact else broad[0] if broad else None
        return self.welcome.default if variant is None else self.welcome.resolve(variant)


def state_of(channel: str, slot: str | None) -> str:
    return channel if slot is None else f"{channel}.{slot}"
