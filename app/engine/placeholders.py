"""Templates in the YAML files: the {placeholders} a text may use, checked when it loads.

The floor every flow schema builds on (app/flows.py, the domains' flows modules): it imports
nothing of sopbot's."""

from __future__ import annotations

import string
from collections.abc import Callable


def placeholders(template: str) -> set[str]:
    """The {names} a str.format template uses."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"bad template: {exc}") from None


def allow_placeholders(*allowed: str) -> Callable[[str], str]:
    """A field validator: the template may use only these {placeholders}."""

    def check(value: str) -> str:
        unknown = placeholders(value) - set(allowed)
        if unknown:
            names = ", ".join(sorted(f"{{{n}}}" for n in unknown))
            hint = ", ".join(f"{{{a}}}" for a in allowed) or "none"
            raise ValueError(f"unknown placeholder {names} (allowed: {hint})")
        return value

    return check
