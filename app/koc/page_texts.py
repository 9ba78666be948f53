"""sop_flows/koc_pages.yaml: what a recommender (推荐官) reads on their own page and what a
friend reads on the share page. Every text is checked for its placeholders; the statuses'
words must name every status the pages show, so none appears as a raw code.

`sopbot check` and the service's start check it with the other flows (app/flows.py) when
sop_flows/koc.yaml is there; the member pages (app/faces/web/koc_member.py) read it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.engine.placeholders import allow_placeholders
from app.koc.models import REWARD_STATUSES
from app.koc.report import SHOWN_CREDITED, SHOWN_NOT_COUNTED, SHOWN_PENDING

Line = Field(min_length=1, max_length=500)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeTexts(Strict):
    title: str = Line
    summary: str = Line
    next_tier: str = Line
    share: str = Line
    share_hint: str = Line
    code_coming: str = Line
    referrals: str = Line
    no_referrals: str = Line
    referee: str = Line
    more: str = Line
    rewards: str = Line
    no_rewards: str = Line
    not_recommender: str = Line
    link_invalid: str = Line
    link_expired: str = Line

    _summary = field_validator("summary")(allow_placeholders("count", "total"))
    _next = field_validator("next_tier")(allow_placeholders("left", "reward"))
    _more = field_validator("more")(allow_placeholders("shown"))
    _plain = field_validator(
        "title", "share", "share_hint", "code_coming", "referrals", "no_referrals", "referee",
        "rewards", "no_rewards", "not_recommender", "link_invalid", "link_expired")(
        allow_placeholders())


class ShareTexts(Strict):
    title: str = Line
    text: str = Line
    qr_alt: str = Line
    unknown: str = Line
    removed: str = Line

    _plain = field_validator("title", "text", "qr_alt", "unknown", "removed")(
        allow_placeholders())


class KocPages(Strict):
    me: MeTexts
    referral_status: dict[str, str]
    reward_status: dict[str, str]
    share: ShareTexts

    @field_validator("referral_status")
    @classmethod
    def _referrals(cls, value: dict[str, str]) -> dict[str, str]:
        return _every(value, (SHOWN_PENDING, SHOWN_CREDITED, SHOWN_NOT_COUNTED))

    @field_validator("reward_status")
    @classmethod
    def _rewards(cls, value: dict[str, str]) -> dict[str, str]:
        return _every(value, REWARD_STATUSES)


def _every(value: dict[str, str], wanted: tuple[str, ...]) -> dict[str, str]:
    if set(value) != set(wanted) or any(not text.strip() for text in value.values()):
        raise ValueError(f"give a non-empty text for each of {', '.join(wanted)} (and no other)")
    return value
