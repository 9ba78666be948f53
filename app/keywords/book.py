"""The live rule book: keywords.yaml loaded at start and again when the file changes. A bad
edit is logged with file, line and what is wrong, and the rules in use stay as they were."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import re2

from app.engine.logs import get_logger
from app.engine.yamlconf import ConfigFileError
from app.keywords.matcher import Matcher
from app.keywords.rules import KeywordsFile, load_keywords

log = get_logger("sopbot.keywords")
CHECK_EVERY_S = 1.0  # how often the file's modification time is looked at, at most


@dataclass(frozen=True)
class Loaded:
    keywords: KeywordsFile
    matcher: Matcher
    stamp: str  # a hash of the file's bytes it came from ("" when unreadable)


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
        # The content's hash, not the time stamp: two quick edits of the same size are told
        # apart, and a file caught half-written is read again once it is complete.
        stamp = _stamp(self.path)
        if stamp == self.loaded.stamp:
            return
        try:
            self.loaded = self._load(stamp)
            log.info("keywords_reloaded", path=str(self.path),
                     rules=len(self.loaded.keywords.rules))
        except Exception as exc:  # whatever is wrong with the new file, the old rules stay
            log.error("keywords_reload_failed", error=str(exc),
                      kept_rules=len(self.loaded.keywords.rules))
            # Not again until the file changes once more.
            self.loaded = Loaded(self.loaded.keywords, self.loaded.matcher, stamp)

    def _load(self, stamp: str | None = None) -> Loaded:
        stamp = _stamp(self.path) if stamp is None else stamp
        keywords = load_keywords(self.path, self.segments)
        try:
            matcher = Matcher(keywords.rules)
        except re2.error as exc:  # thousands of patterns may exceed RE2's memory together
            raise ConfigFileError(self.path, None, f"the patterns together are too much for "
                                                   f"RE2: {exc}") from None
        return Loaded(keywords, matcher, stamp)


def _stamp(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


_BOOKS: dict[Path, KeywordBook] = {}


def book_for(path: Path, segments: set[str] | None = None) -> KeywordBook:
    """The process's book for `path`, loaded on first use (serve loads it at start)."""
    book = _BOOKS.get(path)
    if book is None:
        book = _BOOKS[path] = KeywordBook(path, segments)
    return book
