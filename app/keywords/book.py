"""The live rule book: keywords.yaml loaded at start and again when the file changes. A bad
edit is logged with file, line and what is wrong, and the rules in use stay as they were."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from app.keywords.matcher import Matcher
from app.keywords.rules import KeywordsFile, load_keywords
from app.logs import get_logger
from app.yamlconf import ConfigFileError

log = get_logger("sopbot.keywords")
CHECK_EVERY_S = 1.0  # how often the file's modification time is looked at, at most


@dataclass(frozen=True)
class Loaded:
    keywords: KeywordsFile
    matcher: Matcher
    stamp: tuple[int, int]  # (mtime_ns, size) of the file it came from


class KeywordBook:
    def __init__(self, path: Path, segments: set[str] | None = None) -> None:
        self.path, self.segments = path, segments
        self.loaded = self._load()  # at start a bad file is an error (serve stops)
        self._checked = time.monotonic()

    def current(self) -> Loaded:
        """The rules in use, reloaded first if the file changed (checked once a second)."""
        now = time.monotonic()
        if now - self._checked >= CHECK_EVERY_S:
            self._checked = now
            self._reload_if_changed()
        return self.loaded

    def _reload_if_changed(self) -> None:
        try:
            if _stamp(self.path) == self.loaded.stamp:
                return
            self.loaded = self._load()
            log.info("keywords_reloaded", path=str(self.path),
                     rules=len(self.loaded.keywords.rules))
        except (ConfigFileError, OSError) as exc:
            log.error("keywords_reload_failed", error=str(exc),
                      kept_rules=len(self.loaded.keywords.rules))
            # Not again until the file changes once more.
            self.loaded = Loaded(self.loaded.keywords, self.loaded.matcher, _stamp_or(self.path))

    def _load(self) -> Loaded:
        stamp = _stamp(self.path)
        keywords = load_keywords(self.path, self.segments)
        return Loaded(keywords, Matcher(keywords.rules), stamp)


def _stamp(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_mtime_ns, info.st_size


def _stamp_or(path: Path) -> tuple[int, int]:
    try:
        return _stamp(path)
    except OSError:
        return (0, 0)


_BOOKS: dict[Path, KeywordBook] = {}


def book_for(path: Path, segments: set[str] | None = None) -> KeywordBook:
    """The process's book for `path`, loaded on first use (serve loads it at start)."""
    book = _BOOKS.get(path)
    if book is None:
        book = _BOOKS[path] = KeywordBook(path, segments)
    return book
