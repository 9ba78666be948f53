"""sop_flows/group_welcome.yaml: the group welcome template of each segment's groups: a text
WeCom shows every newcomer (%NICKNAME% becomes their nickname) with the nickname pattern, the
self-introduction prompt, the group rules and the joining welfare, plus an optional link."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.engine.placeholders import allow_placeholders

PARTS = ("segment", "nickname", "intro", "rules", "welfare")
MAX_TEMPLATES = 100  # WeCom's limit per corp
TEXT_BYTES = 3000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WelcomeLink(Strict):
    title: str = Field(min_length=1, max_length=128)
    url: str = Field(min_length=1, max_length=2048, pattern=r"^https?://")
    desc: str | None = Field(None, max_length=512)
    picurl: str | None = Field(None, max_length=2048, pattern=r"^https?://")


class SegmentWelcome(Strict):
    nickname: str = Field(min_length=1, max_length=64)  # e.g. 地区-身份-店名
    intro: str = Field(min_length=1)
    rules: str = Field(min_length=1)
    welfare: str = ""
    link: WelcomeLink | None = None


class GroupWelcomeFlows(Strict):
    # How the parts make one text; {segment} is the segment's label.
    frame: str = Field(min_length=1)
    templates: dict[str, SegmentWelcome] = Field(max_length=MAX_TEMPLATES)

    _frame = field_validator("frame")(allow_placeholders(*PARTS))

    @field_validator("frame")
    @classmethod
    def _nickname(cls, value: str) -> str:
        if "%NICKNAME%" not in value:
            raise ValueError("frame: put %NICKNAME% where WeCom should greet the newcomer")
        return value

    def text_for(self, segment: str, label: str) -> str:
        parts = self.templates[segment]
        return self.frame.format(segment=label, nickname=parts.nickname, intro=parts.intro,
                                 rules=parts.rules, welfare=parts.welfare).strip()


def welcome_problem(flows: GroupWelcomeFlows, labels: dict[str, str]) -> str | None:
    """What the templates name that routing.yaml does not declare, or a text too long."""
    for segment in flows.templates:
        if segment not in labels:
            return f"templates.{segment}: unknown segment (sop_flows/routing.yaml)"
        size = len(flows.text_for(segment, labels[segment]).encode("utf-8"))
        if size > TEXT_BYTES:
            return f"templates.{segment}: the text is {size} bytes, WeCom takes {TEXT_BYTES}"
    return None
