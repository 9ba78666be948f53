"""sop_flows/koc_pages.yaml as the member pages read it: once per path (the first page asked);
a restart reloads it. Its schema is app/koc/page_texts.py (checked with the other flows at
start); without the file the member pages answer 404 and the log says why."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from app.engine.yamlconf import load_model
from app.koc.page_texts import FILE_NAME, KocPages

__all__ = ["KocPages", "koc_pages"]


@cache
def koc_pages(flows_path: Path) -> KocPages:
    """The texts of `flows_path`/koc_pages.yaml (ConfigFileError when missing or wrong)."""
    return load_model(flows_path / FILE_NAME, KocPages)
