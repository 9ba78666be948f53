"""What makes a group message a question, and the key questions are counted together by.

A question is a customer's text that contains one of the ask words (？, 吗, 怎么 …, from
sop_flows/group_rules.yaml) and has at least `min_chars` letters or digits. Its key is the text
folded (NFKC, lower case), without @mentions, and with only letters and digits kept, so
"周末发货吗？", "周末 发货吗??" and "@小美 周末发货吗" are one question."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

KEY_CHARS = 200  # group_question.key
# WeCom writes a mention as "@name" and a U+2005 space, which NFKC makes a plain space.
MENTION = re.compile(r"@\S{1,40}\s")


def fold(text: str) -> str:
    """NFKC, lower case, mentions out: what ask words and keywords are looked for in."""
    return MENTION.sub("", unicodedata.normalize("NFKC", text).lower() + " ").strip()


def key_of(text: str) -> str:
    """The normalised text: letters and digits of the folded text (punctuation, spaces,
    symbols and emoji dropped), at most KEY_CHARS."""
    return "".join(ch for ch in fold(text) if unicodedata.category(ch)[0] in "LN")[:KEY_CHARS]


class Asking:
    """The question test of one settings value (ask words folded once)."""

    def __init__(self, ask_words: Sequence[str], min_chars: int) -> None:
        self.words = tuple(w for w in {fold(word) for word in ask_words} if w)
        self.min_chars = max(min_chars, 1)

    def key(self, text: str | None) -> str | None:
        """The question's key, or None when the text does not ask."""
        if not text:
            return None
        folded = fold(text)
        if not any(word in folded for word in self.words):
            return None
        key = key_of(text)
        return key if len(key) >= self.min_chars else None


def suggested_keyword(text: str) -> str:
    """A `contains` keyword for a question: its folded text without the punctuation around it
    (the rule then matches this wording, inner spaces and all)."""
    folded = fold(text)
    start = next((i for i, ch in enumerate(folded) if _word(ch)), len(folded))
    end = next((i for i in range(len(folded), 0, -1) if _word(folded[i - 1])), start)
    return folded[start:end][:KEY_CHARS]


def _word(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LN"
