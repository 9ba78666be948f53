"""app/faces/demo/demo.yaml: the texts of the demo's synthetic world (reviewers' reasons, the
content queued for the calendar's columns, what people say in the groups), validated like
sop_flows/."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.engine.placeholders import allow_placeholders
from app.engine.yamlconf import load_model

DEMO_YAML = Path(__file__).with_name("demo.yaml")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Item(Strict):
    title: str = Field(min_length=1, max_length=100)
    body: str = ""
    link: str | None = Field(None, pattern=r"^https?://")


Lines = tuple[str, ...]


class Answered(Strict):
    q: str = Field(min_length=1)
    a: str = Field(min_length=1)


class Typo(Strict):
    wrong: str = Field(min_length=1)
    right: str = Field(min_length=1)


class GroupTalk(Strict):
    """What people say in the customer groups (the chat archive's story: group_talk.py)."""

    intros: dict[str, Lines]
    questions: tuple[Answered, ...] = Field(min_length=1)
    open_questions: Lines = Field(min_length=1)
    chatter: Lines = Field(min_length=1)
    staff_morning: Lines = Field(min_length=1)
    staff_welcome: Lines = Field(min_length=1)
    spam: Lines = Field(min_length=1)
    flood: Lines = Field(min_length=1)
    staff_warning: str = Field(min_length=1)
    typo: Typo

    @field_validator("intros")
    @classmethod
    def _intros(cls, value: dict[str, Lines]) -> dict[str, Lines]:
        if not value.get("other"):
            raise ValueError("needs `other`: the intros of people of any other identity type")
        region = allow_placeholders("region")
        for line in (line for lines in value.values() for line in lines):
            region(line)
        return value

    def intro(self, identity: str, pick: int) -> str:
        lines = self.intros.get(identity) or self.intros["other"]
        return lines[pick % len(lines)]


class DemoTexts(Strict):
    reject_reasons: tuple[str, ...] = Field(min_length=1)
    numbered: str = "{title} {n}"
    questions: tuple[str, ...] = ()
    announcement: str = Field(min_length=1)
    content: dict[str, tuple[Item, ...]] = {}
    group_talk: GroupTalk

    _numbered = field_validator("numbered")(allow_placeholders("title", "n"))

    def reason(self, pick: int) -> str:
        return self.reject_reasons[pick % len(self.reject_reasons)]

    def items(self, column: str, count: int) -> list[Item]:
        """`count` items for the column, its declared ones cycled with issue numbers."""
        declared = self.content.get(column, ())
        return [declared[n % len(declared)].model_copy(update={
            "title": self.numbered.format(title=declared[n % len(declared)].title, n=n + 1)})
            for n in range(count if declared else 0)]


def load_texts(path: Path = DEMO_YAML) -> DemoTexts:
    return load_model(path, DemoTexts)
