"""sop_flows/koc.yaml: the recommender programme (推荐官) and KOCs.

- `channel`: the funnel.yaml channel referral adds count under (declared there with
  `referral: true`); each recommender's 联系我 code has the state `<channel>.<short id>` and
  hands new friends to that channel's staff.
- `ask`: what a verified member writes in 微信客服 (or the menu item they click) to become one.
- `codes`: how many recommender codes may exist at once (WeCom's 500,000 API-made codes are the
  corp's, shared with every other tool), and after how many idle days an unused code is deleted.
- `credit`: velocity rules; a referral that trips one waits for an operator instead of counting.
- `tiers`, `ranks`: the rewards (a tier once per recommender; the month's top places per
  segment). `candidates`: how KOC candidates are scored. `honor_roll`: the weekly 光荣榜.
- `texts`: what members and staff read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.engine.placeholders import allow_placeholders

if TYPE_CHECKING:
    from app.calendar.flows import CalendarFlows
    from app.funnel.flows import FunnelFlows

SHORT_ID_LEN = 8  # random base32: a guessed code is as likely as a lottery win


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ask(Strict):
    words: list[str] = Field(default_factory=lambda: ["推荐官", "我要当推荐官"], min_length=1)
    menu_id: str | None = Field(None, min_length=1, max_length=64)

    @field_validator("words")
    @classmethod
    def _words(cls, value: list[str]) -> list[str]:
        if any(not word.strip() for word in value):
            raise ValueError("a word is empty")
        return value


class Codes(Strict):
    max: int = Field(20_000, ge=1, le=500_000)
    idle_days: int = Field(60, ge=1, le=3650)


class Burst(Strict):
    max: int = Field(5, ge=1)
    minutes: int = Field(30, ge=1, le=24 * 60)


class PhoneRange(Strict):
    digits: int = Field(7, ge=3, le=10)  # the leading digits that make a range (138 1234 …)
    max: int = Field(3, ge=1)


class Credit(Strict):
    burst: Burst = Burst()
    phone_range: PhoneRange = PhoneRange()


class Tier(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    referrals: int = Field(ge=1)
    reward: str = Field(min_length=1, max_length=128)


class Ranks(Strict):
    # One reward per place, first place first: the month's top recommenders of each segment.
    rewards: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("rewards")
    @classmethod
    def _rewards(cls, value: list[str]) -> list[str]:
        if any(not r.strip() or len(r) > 128 for r in value):
            raise ValueError("a rank's reward is empty or over 128 characters")
        return value


class Candidates(Strict):
    # Points per credited referral, per answer given in groups, per praise-worthy
    # contribution point (group_rules.yaml), over `days`.
    per_referral: int = Field(3, ge=0)
    per_answer: int = Field(2, ge=0)
    per_contribution: int = Field(1, ge=0)
    days: int = Field(30, ge=1, le=365)
    min_score: int = Field(6, ge=1)


class HonorRoll(Strict):
    column: str = "honor_roll"  # a column of calendar.yaml
    weekday: int = Field(1, ge=1, le=7)  # made that morning for the week's slot
    top: int = Field(3, ge=1, le=10)
    days: int = Field(7, ge=1, le=31)  # what it counts: the last N days


class Texts(Strict):
    # To a member who asked: their code and links.
    joined: str
    # They asked but their code is being made (it follows in a moment).
    code_coming: str
    # They asked but are not a verified member in a group yet.
    not_eligible: str
    # The programme is full (codes.max reached).
    full: str
    # To a recommender's staff member (app message): pass the code on to the member.
    to_staff: str
    # A KOC's topic or guest invitation, to their staff member.
    topic_to_staff: str
    guest_to_staff: str
    # The topic's post body in its column: who leads it.
    topic_body: str
    # The 光荣榜 post: a title, a line per recommender and per helper.
    honor_title: str
    honor_recommender: str
    honor_helper: str
    honor_empty: str

    _joined = field_validator("joined")(allow_placeholders("qr_code", "share_url", "page_url"))
    _plain = field_validator("code_coming", "not_eligible", "full", "honor_empty")(
        allow_placeholders())
    _staff = field_validator("to_staff")(allow_placeholders("name", "share_url", "page_url"))
    _topic = field_validator("topic_to_staff", "guest_to_staff")(
        allow_placeholders("name", "title"))
    _topic_body = field_validator("topic_body")(allow_placeholders("name"))
    _title = field_validator("honor_title")(allow_placeholders("segment", "week"))
    _rec = field_validator("honor_recommender")(allow_placeholders("place", "name", "count"))
    _helper = field_validator("honor_helper")(allow_placeholders("place", "name", "count"))


class KocFlows(Strict):
    channel: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    ask: Ask = Ask()
    codes: Codes = Codes()
    credit: Credit = Credit()
    tiers: list[Tier] = Field(default_factory=list)
    ranks: Ranks = Ranks()
    candidates: Candidates = Candidates()
    honor_roll: HonorRoll | None = None
    # The calendar column of the 话题讨论 topics KOCs lead (the console queues them).
    topic_column: str = "topic"
    texts: Texts

    @model_validator(mode="after")
    def _tiers(self) -> KocFlows:
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError("tiers: two tiers share a name")
        counts = [t.referrals for t in self.tiers]
        if counts != sorted(set(counts)):
            raise ValueError("tiers: list them by referrals, each more than the one before")
        if len(self.channel) + 1 + SHORT_ID_LEN > 30:
            raise ValueError(f"channel {self.channel!r}: with a code's id the state is over "
                             f"WeCom's 30 characters")
        return self

    def state_of(self, short_id: str) -> str:
        return f"{self.channel}.{short_id}"

    def short_id_of(self, state: str) -> str | None:
        """The recommender's id a friend add's state names, or None."""
        channel, dot, short_id = state.partition(".")
        return short_id if dot and channel == self.channel and short_id else None


def koc_problem(koc: KocFlows, funnel: FunnelFlows, calendar: CalendarFlows) -> str | None:
    """What koc.yaml names that funnel.yaml or calendar.yaml lack."""
    channel = funnel.channels.get(koc.channel)
    if channel is None or not channel.referral:
        return (f"channel: {koc.channel!r} is not a channel of funnel.yaml declared with "
                f"`referral: true`")
    if koc.topic_column not in calendar.columns:
        return f"topic_column: {koc.topic_column!r} is not a column of calendar.yaml"
    if koc.honor_roll is not None and koc.honor_roll.column not in calendar.columns:
        return f"honor_roll.column: {koc.honor_roll.column!r} is not a column of calendar.yaml"
    if koc.honor_roll is not None and koc.honor_roll.column not in calendar.generated:
        return (f"honor_roll.column: list {koc.honor_roll.column!r} under calendar.yaml's "
                f"`generated` (sopbot fills it: operators must not be asked for content)")
    return None
