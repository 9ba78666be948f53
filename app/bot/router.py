"""Ordered routers, first match wins (modelled on aiogram 3's dispatcher).

A router holds routes (event type + filters + handler) and child routers. Dispatch walks its own
routes in registration order, then each child in include order; the first route whose type
matches (isinstance, so a route on a base class catches its subclasses) and whose filters all
pass runs, and no other. Filters may return a dict of values, which lands in `ctx.data`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from app.bot.context import Ctx
from app.bot.filters import Filter, evaluate_all
from app.wecom.events import Event

Handler = Callable[[Any, Ctx], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    event_type: type[Event]
    handler: Handler
    filters: tuple[Filter, ...]

    @property
    def name(self) -> str:
        return f"{self.handler.__module__}.{self.handler.__qualname__}"


class Router:
    def __init__(self, name: str) -> None:
        self.name = name
        self._routes: list[Route] = []
        self._children: list[Router] = []

    def add(self, event_type: type[Event], handler: Handler, *filters: Filter) -> None:
        """Register `handler` for events of `event_type` that pass every filter."""
        if not handler.__doc__:
            raise ValueError(f"handler {handler.__qualname__} needs a docstring stating its rule")
        self._routes.append(Route(event_type, handler, filters))

    def include(self, *routers: Router) -> None:
        """Append child routers; they are consulted after this router's own routes, in order."""
        for router in routers:
            if router is self or self in router._ancestry():
                raise ValueError(f"including router {router.name!r} would make a cycle")
            self._children.append(router)

    def routes(self) -> Iterator[Route]:
        """Every route in dispatch order (depth first, own routes before children)."""
        yield from self._routes
        for child in self._children:
            yield from child.routes()

    async def dispatch(self, event: Event, ctx: Ctx) -> str | None:
        """Run the first matching handler; return its name, or None when nothing matched."""
        for route in self.routes():
            if not isinstance(event, route.event_type):
                continue
            data = await evaluate_all(route.filters, event, ctx)
            if data is None:
                continue
            ctx.data.update(data)
            ctx.handler = route.name
            await route.handler(event, ctx)
            return route.name
        return None

    def _ancestry(self) -> Iterator[Router]:
        for child in self._children:
            yield child
            yield from child._ancestry()
