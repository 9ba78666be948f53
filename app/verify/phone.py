"""Mainland mobile numbers: one normal form (11 digits) for storage, matching and the directory."""

from __future__ import annotations

import re

MOBILE = re.compile(r"1[3-9]\d{9}")
# What people type around the number: country code, spaces, dashes, dots, brackets.
NOISE = re.compile(r"[\s\-.()（）]")


def normalise_phone(text: str) -> str | None:
    """'+86 138-0013-8000' → '13800138000'; None when it is not a mainland mobile number."""
    digits = NOISE.sub("", text)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == 11 + len(prefix):
            digits = digits[len(prefix):]
            break
    return digits if MOBILE.fullmatch(digits) else None
