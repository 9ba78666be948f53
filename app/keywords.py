"""keywords.yaml: keyword auto-reply rules.

Only the file's outer shape is checked here (it is YAML with a `rules` list); the rule schema,
matching and replies come with the conversations issue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from app.yamlconf import load_model


class KeywordsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[dict[str, Any]] = []


def load_keywords(path: Path) -> KeywordsFile:
    return load_model(path, KeywordsFile)
