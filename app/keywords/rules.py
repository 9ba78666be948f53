"""keywords.yaml: the keyword auto-replies members get in 微信客服.

A rule matches a member's text `exact`ly, when it `contains` one of its keywords, or by a
`regex` (RE2 syntax: matching takes linear time whatever the pattern, so no rule can be made
catastrophically slow; a pattern RE2 cannot run, e.g. with a back-reference, is a load error).
Matching ignores case and full-/half-width differences (NFKC). The highest priority wins, then
the rule written first. A rule answers per segment (the member's segment picks the answer) or
with its default; an answer is a text, a link card or a menu (msgmenu).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.engine.yamlconf import ConfigFileError, combined, line_of, load_model

TEXT_BYTES = 2048  # a kf text message's content


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().lower()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LinkAnswer(Strict):
    title: str = Field(min_length=1, max_length=128)
    desc: str = Field("", max_length=512)
    url: str = Field(min_length=1, max_length=2048, pattern=r"^https?://")
    thumb_media_id: str = Field(min_length=1)  # WeCom requires a cover (media/upload)


class MenuItem(Strict):
    id: str = Field(min_length=1, max_length=64)
    content: str = Field(min_length=1, max_length=1024)


class MenuAnswer(Strict):
    head: str = Field("", max_length=1024)
    items: tuple[MenuItem, ...] = Field(min_length=1, max_length=10)
    tail: str = Field("", max_length=1024)


class Answer(Strict):
    """Exactly one of text, link or menu."""

    text: str | None = Field(None, min_length=1)
    link: LinkAnswer | None = None
    menu: MenuAnswer | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Answer:
        if sum(x is not None for x in (self.text, self.link, self.menu)) != 1:
            raise ValueError("an answer is exactly one of text, link or menu")
        if self.text is not None and len(self.text.encode("utf-8")) > TEXT_BYTES:
            raise ValueError(f"the text is {len(self.text.encode('utf-8'))} bytes; "
                             f"微信客服 takes {TEXT_BYTES}")
        return self


class Rule(Strict):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")
    match: Literal["exact", "contains", "regex"] = "contains"
    keywords: tuple[str, ...] = ()
    pattern: str | None = None
    priority: int = Field(0, ge=-1000, le=1000)
    answer: Answer
    segments: dict[str, Answer] = {}

    @model_validator(mode="after")
    def _what_to_match(self) -> Rule:
        if self.match == "regex":
            if not self.pattern or self.keywords:
                raise ValueError("a regex rule has a pattern and no keywords")
            problem = regex_problem(self.pattern)
            if problem:
                raise ValueError(f"pattern {self.pattern!r}: {problem}")
        else:
            if self.pattern is not None or not self.keywords:
                raise ValueError(f"a {self.match} rule has keywords and no pattern")
            if any(not normalise(k) for k in self.keywords):
                raise ValueError("a keyword is empty")
        return self

    def answer_for(self, segment: str | None) -> Answer:
        return self.segments.get(segment or "", self.answer)


def re2_options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive, options.log_errors = False, False
    return options


def regex_problem(pattern: str) -> str | None:
    """Why RE2 cannot run the pattern (it matches in linear time, so it has no back-references
    or look-arounds), or None."""
    try:
        re2.compile(pattern, options=re2_options())
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        return f"not a pattern RE2 can run (no back-references or look-arounds): {detail}"
    return None


class Handoff(Strict):
    """When a person takes over: the customer asks for one, or sopbot missed too often."""

    keywords: tuple[str, ...] = Field(("人工", "转人工", "人工客服"), min_length=1)
    after_misses: int = Field(2, ge=1, le=10)
    text: str = Field(min_length=1, max_length=2048)  # said before the hand-off


class Texts(Strict):
    unanswered: str = Field(min_length=1, max_length=2048)  # nothing matched (yet)


class KeywordsFile(Strict):
    rules: tuple[Rule, ...] = ()
    handoff: Handoff
    texts: Texts

    @model_validator(mode="after")
    def _menu_items_lead_somewhere(self) -> KeywordsFile:
        """A menu item the customer clicks comes back with its id: it must name a rule."""
        ids = {rule.id for rule in self.rules}
        for n, rule in enumerate(self.rules):
            for answer in (rule.answer, *rule.segments.values()):
                for item in answer.menu.items if answer.menu else ():
                    if item.id not in ids:
                        raise ValueError(f"rules.{n}: menu item {item.id!r} names no rule "
                                         f"(a click answers with the rule of that id)")
        return self

    @model_validator(mode="after")
    def _no_duplicates(self) -> KeywordsFile:
        seen: dict[tuple[str, str], int] = {}
        ids: dict[str, int] = {}
        for n, rule in enumerate(self.rules):
            if rule.id in ids:
                raise ValueError(f"rules.{n}: id {rule.id!r} is used by rules.{ids[rule.id]} too")
            ids[rule.id] = n
            for what in ([rule.pattern or ""] if rule.match == "regex"
                         else [normalise(k) for k in rule.keywords]):
                if (rule.match, what) in seen:
                    raise ValueError(f"rules.{n}: duplicate rule: {rule.match} {what!r} is in "
                                     f"rules.{seen[(rule.match, what)]} already")
                seen[(rule.match, what)] = n
        return self


def load_keywords(path: Path, segments: set[str] | None = None) -> KeywordsFile:
    """Read and check keywords.yaml; ConfigFileError with file and line for anything wrong,
    including an answer for a segment sop_flows/routing.yaml does not declare."""
    keywords = load_model(path, KeywordsFile)
    unknown = [ConfigFileError(path, line_of(path, ["rules", str(n), "segments", segment]),
                               f"rules.{n}.segments: unknown segment {segment!r} "
                               f"(sop_flows/routing.yaml)")
               for n, rule in enumerate(keywords.rules) for segment in rule.segments
               if segments is not None and segment not in segments]
    if unknown:  # every one at once, like every other problem `sopbot check` reports
        raise combined(unknown)
    return keywords
