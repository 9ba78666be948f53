"""Ordered routers, first match wins (modelled on aiogram 3's dispatcher), each carrying
everything about its behaviour (bolt-python's ack and lazy work on one listener).

A router holds routes (event type + filters + handler) and child routers. Dispatch walks its own
routes in registration order, then each child in include order; the first route whose type
matches (isinstance, so a route on a base class catches its subclasses) and whose filters all
pass runs, and no other. Filters may return a dict of values, which lands in `ctx.data`.

Besides its handler, a behaviour registers here, once, what runs elsewhere on its behalf:
- `intake` on a route: the message stored with the event itself, before the inbox worker (a
  welcome's code lives 20 s; `Router.intake` builds what the callback path and the kf reader
  run);
- `on_settled` / `after_settled`: what is recorded when the outbox settles a row of a kind it
  queues (`Router.settled_hooks`, handed to the sender);
- `before_kf_store`: work on a kf page before it is stored (fetching what its messages name);
- `on_archive_page`: work on each chat archive page's new group messages, in the transaction
  that stores them and the reader's cursor (rollups, questions, group rules);
- `every`: scheduled jobs (`Router.jobs`, run by the scheduler with the `Env` each time).
The first three are built once per process from the `Env` (settings, flows, database, WeCom)
when app/faces/web/main.py wires the process; the engine runs them, never imports them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from app.engine.bot.context import Ctx
from app.engine.bot.env import Env
from app.engine.bot.filters import Filter, evaluate_all
from app.engine.logs import get_logger
from app.engine.outbox.store import Message
from app.engine.wecom.events import Event

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.engine.outbox.sender import AfterSettle, SettledHook
    from app.engine.wecom.api_kf import KfMessage
    from app.engine.wecom.archive_events import ArchiveMessage

log = get_logger("sopbot.router")
E = TypeVar("E", bound=Event)
# A handler names the flows it reads (Ctx[Flows]); the engine only carries them (Ctx[Any]).
Handler = Callable[[E, Ctx[Any]], Awaitable[None]]
# Built once from the Env: the message to store with an event, or None. The callback path and
# the kf reader run the router's combined rule, an IntakeRule[Event].
IntakeRule = Callable[[E, datetime], Message | None]
Intake = Callable[[Env[Any]], IntakeRule[E]]
KfPageStep = Callable[["list[KfMessage]"], Awaitable["list[KfMessage]"]]
Job = Callable[[Env[Any]], Awaitable[None]]
# Run on each archive page's new messages sent in groups (sorted by seq), inside the page's
# transaction, with the time of the read; the steps run in registration order.
ArchivePageStep = Callable[["AsyncSession", "Sequence[ArchiveMessage]", datetime],
                           Awaitable[None]]


@dataclass(frozen=True)
class Route(Generic[E]):
    event_type: type[E]
    handler: Handler[E]
    filters: tuple[Filter, ...]
    intake: Intake[E] | None = None

    @property
    def name(self) -> str:
        return f"{self.handler.__module__}.{self.handler.__qualname__}"


@dataclass(frozen=True)
class ScheduledJob:
    """A job run every `every_s` seconds by the process leading the scheduler."""

    name: str
    run: Job
    every_s: float
    # Also run the moment a process takes the lead (what was due while nobody led).
    on_lead: bool = False


class Router:
    def __init__(self, name: str, *, partial: bool = False) -> None:
        self.name = name
        # A router that deliberately lacks some behaviours' intake (tests of the inbox's own
        # mechanics); any other router given to the service must have them all.
        self.partial = partial
        self._routes: list[Route[Any]] = []
        self._children: list[Router] = []
        self._settled: list[tuple[str, Callable[[Env[Any]], SettledHook]]] = []
        self._after_settled: list[Callable[[Env[Any]], AfterSettle]] = []
        self._kf_steps: list[Callable[[Env[Any]], KfPageStep]] = []
        self._archive_steps: list[Callable[[Env[Any]], ArchivePageStep]] = []
        self._jobs: list[ScheduledJob] = []

    def add(self, event_type: type[E], handler: Handler[E], *filters: Filter,
            intake: Intake[E] | None = None) -> None:
        """Register `handler` for events of `event_type` that pass every filter; `intake`
        builds the message stored with such an event before any worker sees it."""
        if not handler.__doc__:
            raise ValueError(f"handler {handler.__qualname__} needs a docstring stating its rule")
        self._routes.append(Route(event_type, handler, filters, intake))

    def on_settled(self, kind: str, build: Callable[[Env[Any]], SettledHook]) -> None:
        """When the outbox settles a row of `kind`: the hook runs in the settle transaction."""
        self._settled.append((kind, build))

    def after_settled(self, build: Callable[[Env[Any]], AfterSettle]) -> None:
        """Once per settle transaction, after every row hook (work that locks last)."""
        self._after_settled.append(build)

    def before_kf_store(self, build: Callable[[Env[Any]], KfPageStep]) -> None:
        """A step the kf reader runs on each page's messages before storing them."""
        self._kf_steps.append(build)

    def on_archive_page(self, build: Callable[[Env[Any]], ArchivePageStep]) -> None:
        """A step the archive reader runs on each page's new group messages."""
        self._archive_steps.append(build)

    def every(self, every_s: float, job: Job, *, on_lead: bool = False) -> None:
        """Run `job` every `every_s` seconds in the process that leads the scheduler."""
        if not job.__doc__:
            raise ValueError(f"job {job.__qualname__} needs a docstring stating what it does")
        self._jobs.append(ScheduledJob(job.__name__, job, every_s, on_lead))

    def include(self, *routers: Router) -> None:
        """Append child routers; they are consulted after this router's own routes, in order."""
        for router in routers:
            if router is self or self in router._descendants():
                raise ValueError(f"including router {router.name!r} would make a cycle")
            self._children.append(router)

    def routes(self) -> Iterator[Route[Any]]:
        """Every route in dispatch order (depth first, own routes before children)."""
        yield from self._routes
        for child in self._children:
            yield from child.routes()

    async def dispatch(self, event: Event, ctx: Ctx[Any]) -> str | None:
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

    # --- what the rest of the engine asks -------------------------------------------------

    def intake(self, env: Env[Any]) -> IntakeRule[Event]:
        """The intake of every route, built once: the first message an event's routes give. A
        rule that raises is logged and passed over (the handler queues its message later
        anyway): it never fails the callback or the kf page, nor the rules after it."""
        rules = [(route.name, route.event_type, route.intake(env)) for route in self.routes()
                 if route.intake is not None]

        def intake(event: Event, received: datetime) -> Message | None:
            for name, event_type, rule in rules:
                if not isinstance(event, event_type):
                    continue
                try:
                    if (message := rule(event, received)) is not None:
                        return message
                except Exception:
                    log.exception("intake_failed", route=name, kind=event.kind)
            return None
        return intake

    def settled_hooks(
            self, env: Env[Any]) -> tuple[list[tuple[str, SettledHook]], list[AfterSettle]]:
        """(kind, hook) for every settle hook, and the after-settle hooks, built once."""
        return ([(kind, build(env)) for router in self._all() for kind, build in router._settled],
                [build(env) for router in self._all() for build in router._after_settled])

    def kf_page_steps(self, env: Env[Any]) -> list[KfPageStep]:
        return [build(env) for router in self._all() for build in router._kf_steps]

    def archive_page_steps(self, env: Env[Any]) -> list[ArchivePageStep]:
        return [build(env) for router in self._all() for build in router._archive_steps]

    def jobs(self) -> list[ScheduledJob]:
        jobs = [job for router in self._all() for job in router._jobs]
        names = [job.name for job in jobs]
        if len(names) != len(set(names)):
            raise ValueError(f"two scheduled jobs share a name: {sorted(names)}")
        return jobs

    def missing_intake(self, complete: Router) -> list[str]:
        """Routes of `complete` that declare an intake this router has no intake for."""
        have = {(route.event_type, route.intake) for route in self.routes()}
        return [route.name for route in complete.routes()
                if route.intake is not None and (route.event_type, route.intake) not in have]

    def _all(self) -> Iterator[Router]:
        yield self
        for child in self._children:
            yield from child._all()

    def _descendants(self) -> Iterator[Router]:
        for child in self._children:
            yield child
            yield from child._descendants()
