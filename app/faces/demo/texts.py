"""app/faces/demo/demo.yaml: the texts of the demo's synthetic world (reviewers' reasons, the
content queued for the calendar's columns), validated like sop_flows/."""

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


class DemoTexts(Strict):
    reject_reasons: tuple[str, ...] = Field(min_length=1)
    numbered: str = "{title} {n}"
    questions: tuple[str, ...] = ()
    announcement: str = Field(min_length=1)
    content: dict[str, tuple[Item, ...]] = {}

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
