"""Composable filters: `a & b`, `a | b`, `~a`.

A filter is called with (event, ctx) and answers False/None (no match), True (match) or a dict
(match, with values for `ctx.data`, e.g. a command's arguments). Sync or async both work.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from typing import Any

from app.engine.bot.context import Ctx
from app.engine.wecom.events import Event, TextMessage

FilterResult = bool | dict[str, Any] | None

COMMAND = re.compile(r"^[/／]\s*([A-Za-z][\w-]*)(?:\s+(.*))?$", re.DOTALL)


class Filter:
    """Base class; subclasses implement `check`."""

    def check(self, event: Event, ctx: Ctx[Any]) -> Any:
        raise NotImplementedError

    async def __call__(self, event: Event, ctx: Ctx[Any]) -> dict[str, Any] | None:
        result = self.check(event, ctx)
        if inspect.isawaitable(result):
            result = await result
        return _as_data(result)

    def __and__(self, other: Filter) -> Filter:
        return _All((self, other))

    def __or__(self, other: Filter) -> Filter:
        return _Any((self, other))

    def __invert__(self) -> Filter:
        return _Not(self)


def _as_data(result: FilterResult) -> dict[str, Any] | None:
    if result is None or result is False:
        return None
    return result if isinstance(result, dict) else {}


async def evaluate_all(filters: Iterable[Filter], event: Event,
                       ctx: Ctx[Any]) -> dict[str, Any] | None:
    """Merged data when every filter matches, else None (short-circuits on the first miss)."""
    merged: dict[str, Any] = {}
    for flt in filters:
        data = await flt(event, ctx)
        if data is None:
            return None
        merged.update(data)
    return merged


class _All(Filter):
    def __init__(self, parts: tuple[Filter, ...]) -> None:
        self.parts = parts

    async def check(self, event: Event, ctx: Ctx[Any]) -> FilterResult:
        return await evaluate_all(self.parts, event, ctx)


class _Any(Filter):
    def __init__(self, parts: tuple[Filter, ...]) -> None:
        self.parts = parts

    async def check(self, event: Event, ctx: Ctx[Any]) -> FilterResult:
        for part in self.parts:
            data = await part(event, ctx)
            if data is not None:
                return data
        return None


class _Not(Filter):
    def __init__(self, inner: Filter) -> None:
        self.inner = inner

    async def check(self, event: Event, ctx: Ctx[Any]) -> FilterResult:
        return await self.inner(event, ctx) is None


class Predicate(Filter):
    """Any callable (event, ctx) -> bool | dict, sync or async."""

    def __init__(self, func: Callable[[Any, Ctx[Any]], Any]) -> None:
        self.func = func

    def check(self, event: Event, ctx: Ctx[Any]) -> Any:
        return self.func(event, ctx)


class Where(Filter):
    """Attribute equality: Where(update_detail="add_member"), Where(agent_id=1000002)."""

    def __init__(self, **expected: Any) -> None:
        self.expected = expected

    def check(self, event: Event, ctx: Ctx[Any]) -> bool:
        missing = object()
        return all(getattr(event, k, missing) == v for k, v in self.expected.items())


class Command(Filter):
    """A text message `/name args` (half- or full-width slash, name case-insensitive).

    With no names it matches any command. Data: {"command": name, "args": rest}.
    """

    def __init__(self, *names: str) -> None:
        self.names = frozenset(name.lower() for name in names)

    def check(self, event: Event, ctx: Ctx[Any]) -> FilterResult:
        if not isinstance(event, TextMessage):
            return None
        match = COMMAND.match(event.content.strip())
        if match is None:
            return None
        name = match.group(1).lower()
        if self.names and name not in self.names:
            return None
        return {"command": name, "args": (match.group(2) or "").strip()}


class FromOperator(Filter):
    """The sender is one of SOPBOT_OPERATORS."""

    def check(self, event: Event, ctx: Ctx[Any]) -> bool:
        return event.from_user_name in ctx.settings.operators
