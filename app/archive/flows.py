"""sop_flows/group_rules.yaml: the group rules (群规) with their rewards and penalties, and the
settings of the other readings of group talk (hot questions, newcomers' introductions).

- `violations`: what a customer must not post (staff and robots never violate): keywords (other
  platforms, sensitive words: one Aho-Corasick pass finds them all), links to sites not on an
  allow list, mainland mobile numbers, WeChat ids, a pattern of one's own (RE2), flooding (more
  than `max_messages` within `within_seconds` by one sender in one group, by the messages' own
  times). Each rule hit by a message is a strike of its points on the member's ledger.
- `contributions`: answering another's question, introducing oneself; points too.
- `thresholds`: over the last `window_days` (by the messages' times), active violation points
  of a member in one group reaching `owner_task` ask the group's owner to remind or remove
  them by hand (WeCom has no API that removes an external member); across all groups reaching
  `operator_alert` tell the operators (a repeat offender); contribution points in one group
  reaching `praise` make the member a praise candidate in the console (no message).
- `texts`: what the owner and the operators read (app messages).
- `questions`, `newcomers`: app/archive/questions.py, app/archive/newcomers.py.

The file is optional: without it there are no violation rules, and the rest has its defaults.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.engine.placeholders import allow_placeholders
from app.keywords.rules import normalise, regex_problem


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DEFAULT_ASK_WORDS = ["？", "?", "吗", "怎么", "多少", "有没有", "能不能", "哪里", "什么时候",
                     "如何"]


DEFAULT_NOT_ANSWERS = ("好的", "好", "收到", "谢谢", "多谢", "早", "早上好", "晚安", "哈哈",
                       "嗯", "ok", "欢迎", "欢迎欢迎", "欢迎新朋友")


class QuestionSettings(Strict):
    """flows.group_rules.questions: what asks, and how soon it must be answered."""

    ask_words: list[str] = Field(default_factory=lambda: list(DEFAULT_ASK_WORDS), min_length=1)
    answer_within_min: int = Field(30, ge=1, le=24 * 60)
    min_chars: int = Field(4, ge=1, le=200)
    # Messages that answer nothing (greetings, thanks, acknowledgements), compared by their
    # letters and digits: they do not close a question or earn an answer.
    not_answers: list[str] = Field(default_factory=lambda: list(DEFAULT_NOT_ANSWERS))

    @field_validator("ask_words")
    @classmethod
    def _no_empty_word(cls, value: list[str]) -> list[str]:
        if any(not word.strip() for word in value):
            raise ValueError("an ask word is empty")
        return value


class NewcomerSettings(Strict):
    """flows.group_rules.newcomers: what counts as a newcomer's self-introduction."""

    intro_within_days: int = Field(3, ge=1, le=90)
    min_chars: int = Field(6, ge=1, le=500)


KEYWORDS, LINKS, PHONE, WECHAT_ID, REGEX, FLOODING = (
    "keywords", "links", "phone", "wechat_id", "regex", "flooding")
ViolationKind = Literal["keywords", "links", "phone", "wechat_id", "regex", "flooding"]
RULE_ID = r"^[a-z0-9][a-z0-9_]*$"
# What each kind may set besides id, label, kind and points.
KIND_FIELDS = {KEYWORDS: {"keywords"}, LINKS: {"allow_domains"}, PHONE: set(),
               WECHAT_ID: set(), REGEX: {"pattern"},
               FLOODING: {"max_messages", "within_seconds"}}
OPTIONAL_FIELDS = {"keywords", "allow_domains", "pattern", "max_messages", "within_seconds"}
DOMAIN = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$"


class Violation(Strict):
    """One rule a customer's message can break."""

    id: str = Field(min_length=1, max_length=32, pattern=RULE_ID)
    label: str = Field(min_length=1, max_length=32)  # what the console and the texts call it
    kind: ViolationKind
    points: int = Field(ge=1, le=100)
    keywords: list[str] = []  # keywords: found anywhere in the text, case and width ignored
    allow_domains: list[str] = []  # links: these sites and their subdomains are fine
    pattern: str | None = None  # regex: RE2 syntax, case ignored
    max_messages: int | None = Field(None, ge=1, le=1000)  # flooding: more than this ...
    within_seconds: int = Field(60, ge=1, le=3600)  # ... within this many seconds

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Violation:
        given = {name for name in OPTIONAL_FIELDS if name in self.model_fields_set}
        stray = sorted(given - KIND_FIELDS[self.kind])
        if stray:
            raise ValueError(f"a {self.kind} rule has no {', '.join(stray)}")
        if self.kind == KEYWORDS:
            if not self.keywords:
                raise ValueError("a keywords rule needs keywords")
            if any(not normalise(word) for word in self.keywords):
                raise ValueError("a keyword is empty")
        elif self.kind == LINKS:
            bad = [d for d in self.allow_domains if not _is_domain(d)]
            if bad:
                raise ValueError(f"allow_domains: {bad[0]!r} is not a domain (like example.com)")
        elif self.kind == REGEX:
            if not self.pattern:
                raise ValueError("a regex rule needs a pattern")
            if problem := regex_problem(self.pattern):
                raise ValueError(f"pattern {self.pattern!r}: {problem}")
        elif self.kind == FLOODING and self.max_messages is None:
            raise ValueError("a flooding rule needs max_messages")
        return self

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(d.strip().lower() for d in self.allow_domains)


def _is_domain(value: str) -> bool:
    return re.fullmatch(DOMAIN, value.strip().lower()) is not None


class Contribution(Strict):
    label: str = Field(min_length=1, max_length=32)
    points: int = Field(ge=0, le=100)  # 0: not counted


class Contributions(Strict):
    """answer: a customer answered another's question (app/archive/questions.py decides which
    message answers); intro: a newcomer's self-introduction (app/archive/newcomers.py)."""

    answer: Contribution = Contribution(label="回答问题", points=1)
    intro: Contribution = Contribution(label="自我介绍", points=1)


class Thresholds(Strict):
    window_days: int = Field(30, ge=1, le=365)
    owner_task: int = Field(5, ge=1, le=10_000)  # violation points in one group
    operator_alert: int = Field(10, ge=1, le=10_000)  # violation points in all groups
    praise: int = Field(5, ge=1, le=10_000)  # contribution points in one group

    @model_validator(mode="after")
    def _alert_above_task(self) -> Thresholds:
        if self.operator_alert < self.owner_task:
            raise ValueError(f"operator_alert ({self.operator_alert}) is for repeat offenders: "
                             f"at least owner_task ({self.owner_task})")
        return self


# What the texts may use: the member (a name when the directory knows one), the group, the
# rule broken by the message that crossed the threshold, the member's points and the threshold,
# the window, when the message was sent, an excerpt of it (phone numbers masked), and for the
# operators the number of groups the points come from.
TEXT_PLACEHOLDERS = ("member", "group", "rule", "points", "threshold", "days", "time",
                     "excerpt")


class RuleTexts(Strict):
    owner_task: str = Field(min_length=1, max_length=1000)
    operator_alert: str = Field(min_length=1, max_length=1000)

    _owner = field_validator("owner_task")(allow_placeholders(*TEXT_PLACEHOLDERS))
    _alert = field_validator("operator_alert")(allow_placeholders(*TEXT_PLACEHOLDERS,
                                                                  "groups"))


class ArchiveTexts(Strict):
    """What the operators are told about the archive reader itself."""

    quarantined: str = Field(min_length=1, max_length=1000)

    _quarantined = field_validator("quarantined")(allow_placeholders("seq", "msgid", "reason",
                                                                     "count"))


class GroupRulesFlows(Strict):
    """sop_flows/group_rules.yaml (every part optional)."""

    violations: list[Violation] = []
    contributions: Contributions = Contributions()
    thresholds: Thresholds = Thresholds()
    texts: RuleTexts | None = None
    questions: QuestionSettings = QuestionSettings()
    newcomers: NewcomerSettings = NewcomerSettings()
    archive: ArchiveTexts | None = None  # None: a quarantined record is logged only

    @model_validator(mode="after")
    def _consistent(self) -> GroupRulesFlows:
        seen: set[str] = set()
        for n, rule in enumerate(self.violations):
            if rule.id in seen or rule.id in CONTRIBUTION_RULES:
                raise ValueError(f"violations.{n}.id: {rule.id!r} is used twice"
                                 if rule.id in seen else
                                 f"violations.{n}.id: {rule.id!r} is a contribution's name")
            seen.add(rule.id)
        floods = [n for n, rule in enumerate(self.violations) if rule.kind == FLOODING]
        if len(floods) > 1:
            raise ValueError(f"violations.{floods[1]}.kind: one flooding rule at most")
        if self.violations and self.texts is None:
            raise ValueError("texts: violations need texts (owner_task, operator_alert)")
        return self

    def violation(self, rule_id: str) -> Violation | None:
        return next((rule for rule in self.violations if rule.id == rule_id), None)

    def label_of(self, rule_id: str) -> str:
        """What the console calls a strike's rule (its id when the rule is gone)."""
        if rule_id in CONTRIBUTION_RULES:
            return str(getattr(self.contributions, rule_id).label)
        found = self.violation(rule_id)
        return found.label if found else rule_id


CONTRIBUTION_RULES = ("answer", "intro")
