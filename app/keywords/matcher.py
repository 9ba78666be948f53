"""Finding the rule for a member's text among thousands, in one pass per kind of match:
a dict for `exact`, an Aho-Corasick automaton (pyahocorasick: all keywords found in one scan
of the text) for `contains`, and one RE2 set (every pattern tried in one linear-time scan) for
`regex`. The winner is the highest priority, then the rule written first, as a plain loop
over the rules in order would find (bench/keywords.py compares the two)."""

from __future__ import annotations

import ahocorasick
import re2

from app.keywords.rules import Rule, normalise, re2_options


class Matcher:
    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self._exact: dict[str, list[int]] = {}
        self._contains = ahocorasick.Automaton()
        self._regex_rules: list[int] = []
        self._regex = re2.Set.SearchSet(re2_options())
        for n, rule in enumerate(rules):
            self._add(n, rule)
        if len(self._contains):
            self._contains.make_automaton()
        if self._regex_rules:
            self._regex.Compile()

    def _add(self, n: int, rule: Rule) -> None:
        if rule.match == "regex":
            assert rule.pattern is not None
            self._regex.Add(rule.pattern)
            self._regex_rules.append(n)
            return
        for keyword in {normalise(k) for k in rule.keywords}:
            if rule.match == "exact":
                self._exact.setdefault(keyword, []).append(n)
            else:
                found = self._contains.get(keyword, None)
                self._contains.add_word(keyword, [*(found or ()), n])

    def by_id(self, rule_id: str) -> Rule | None:
        """The rule a clicked menu item names."""
        return next((rule for rule in self.rules if rule.id == rule_id), None)

    def match(self, text: str) -> Rule | None:
        """The winning rule for `text`, or None."""
        text = normalise(text)
        candidates = list(self._exact.get(text, ()))
        if len(self._contains):
            for _, found in self._contains.iter(text):
                candidates.extend(found)
        if self._regex_rules:
            candidates.extend(self._regex_rules[i] for i in self._regex.Match(text) or ())
        if not candidates:
            return None
        best = min(candidates, key=lambda n: (-self.rules[n].priority, n))
        return self.rules[best]


def plain_match(rules: tuple[Rule, ...], text: str) -> Rule | None:
    """The same answer by trying every rule in turn: the reference for tests and the bench."""
    text, best = normalise(text), None
    for n, rule in enumerate(rules):
        if best is not None and rule.priority <= best[1].priority:
            continue
        if _matches(rule, text):
            best = (n, rule)
    return best[1] if best else None


def _matches(rule: Rule, text: str) -> bool:
    if rule.match == "exact":
        return text in {normalise(k) for k in rule.keywords}
    if rule.match == "contains":
        return any(normalise(k) in text for k in rule.keywords)
    assert rule.pattern is not None
    return re2.search(rule.pattern, text, options=re2_options()) is not None
