"""Playing the posting calendar over the week that just ended, each day as a timeline. At
every posting time of sop_flows/calendar.yaml (and the onboarding campaigns')
the calendar's own `post_due` runs with that moment as its clock, so its mass tasks go out
through the outbox to the simulator as they would that day; group owners confirm some of
them in the client a while later (WeCom's clock is moved to each moment first: it enforces
one mass message per group per Asia/Shanghai day by it), a few members leave their group,
and `track` looks at the tasks three times a day (confirmed, reminded, missed after 24 h).

The service's clock moves with WeCom's (the demo set it to the week's start before the service
started; `Wire.set_clock` moves both, forward only), so everything the service writes carries
the simulated moment and the console's "today" follows the week. The service's wall-clock
scheduler is off in the demo (workspace.py), so these are the only calendar runs."""

from __future__ import annotations

import heapq
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import count

from sqlalchemy import select

from app.calendar.models import CalendarPost
from app.calendar.planner import MASS_TASK
from app.calendar.posting import QUEUED, post_due
from app.calendar.posts import at_time
from app.calendar.tracking import track
from app.engine.config import SHANGHAI
from app.faces.demo.population import Person
from app.faces.demo.wire import Wire
from app.faces.web.runtime import Runtime
from app.members.models import JOINED, Member

TRACK_AT = ("12:00", "18:00", "23:30")
CLOSE_AT = "20:00"  # the day after the last: every task of the last day is 24 h old
GROUNDWORK_AT = "09:00"
CONFIRM_RATE = {"zhangsan": 0.85, "lisi": 0.6}  # one owner is diligent, one is busy
OTHER_CONFIRM_RATE = 0.7
CONFIRM_AFTER_MIN = (10, 150)  # owners confirm a while after the task reaches their client
LATEST_CONFIRM = time(23, 20)
Action = Callable[[datetime], Awaitable[None]]


@dataclass
class DayStats:
    day: date
    tasks: int = 0
    onboarding: int = 0  # tasks carrying a group's onboarding action
    confirmed: int = 0
    reminded: int = 0
    missed: int = 0  # tasks of earlier days found unconfirmed after 24 h
    left: int = 0

    def line(self, number: int, arrived: str = "") -> str:
        return (f"day {number}  {self.day:%a %Y-%m-%d}  {arrived}  {self.tasks:>3} mass tasks "
                f"({self.onboarding} with onboarding)  {self.confirmed:>3} confirmed  "
                f"{self.reminded:>3} reminders  {self.missed:>3} missed  {self.left} left")


@dataclass
class FastForward:
    wire: Wire
    runtime: Runtime
    people: list[Person]
    days: int
    rng: random.Random
    _queue: list[tuple[datetime, int, Action]] = field(default_factory=list)
    _order: count[int] = field(default_factory=count)
    _seen: set[int] = field(default_factory=set)  # tasks whose confirmation is decided
    _stats: DayStats = field(default_factory=lambda: DayStats(date.min))

    async def day(self, number: int, day: date,
                  extra: tuple[tuple[str, Action], ...] = ()) -> DayStats:
        """Play one day, in time order, with `extra` actions at their HH:MM; its numbers."""
        self._stats = DayStats(day)
        for hhmm, action in extra:
            self._at(at_time(day, hhmm), action)
        for hhmm in posting_times(self.runtime, day):
            self._at(at_time(day, hhmm) + timedelta(minutes=1), self._post)
        for hhmm in TRACK_AT:
            self._at(at_time(day, hhmm), self._track)
        for person in self._leaving_on(number):
            self._at(at_time(day, "09:00") + timedelta(hours=self.rng.uniform(0, 12)),
                     self._leaver(person))
        await self._play()
        self._stats.tasks, self._stats.onboarding = await self._tasks_of(day)
        return self._stats

    async def close(self) -> DayStats:
        """Today, up to now: tasks of the week unconfirmed for 24 h become missed (today's
        20:00 run, or the latest one can be had: the clocks never move past now)."""
        today = datetime.now(SHANGHAI)
        self._stats = DayStats(today.date())
        self._at(min(at_time(today.date(), CLOSE_AT), today - timedelta(minutes=1)), self._track)
        await self._play()
        await self.wire.set_clock(None)  # both clocks back to now, for the console
        return self._stats

    def _at(self, at: datetime, action: Action) -> None:
        heapq.heappush(self._queue, (at, next(self._order), action))

    async def _play(self) -> None:
        while self._queue:
            at, _, action = heapq.heappop(self._queue)
            await self.wire.set_clock(at)
            await action(at)

    async def _post(self, now: datetime) -> None:
        s, flows = self.runtime, self.runtime.flows
        await post_due(s.db, flows.calendar, now, s.settings.agent_id, flows.onboarding,
                       set(s.settings.robot_keys), talks=flows.talks)
        await self.wire.quiet()  # delivered: WeCom's msgid is on each task
        for post in await self._new_tasks(now):
            rate = CONFIRM_RATE.get(post.target, OTHER_CONFIRM_RATE)
            if self.rng.random() < rate:
                later = post.at + timedelta(minutes=self.rng.uniform(*CONFIRM_AFTER_MIN))
                last = datetime.combine(now.date(), LATEST_CONFIRM, SHANGHAI)
                self._at(max(now, min(later, last)), self._confirmer(post))

    def _confirmer(self, post: CalendarPost) -> Action:
        async def confirm(_now: datetime) -> None:
            await self.wire.scenario("confirm_mass_task", msgid=post.msgid, userid=post.target)
        return confirm

    async def _track(self, now: datetime) -> None:
        tracked = await track(self.runtime.db, self.runtime.wecom, now)
        await self.wire.quiet()  # reminders and cancellations delivered
        self._stats.confirmed += tracked.confirmed
        self._stats.reminded += tracked.reminded
        self._stats.missed += tracked.missed

    def _leaving_on(self, number: int) -> list[Person]:
        return [p for p in self.people if p.leaves_at is not None
                and int(p.leaves_at * self.days) + 1 == number]

    def _leaver(self, person: Person) -> Action:
        async def leave(_now: datetime) -> None:
            async with self.wire.db.reader() as session:
                chat_id = await session.scalar(select(Member.group_chat_id).where(
                    Member.external_userid == person.external_userid, Member.status == JOINED))
            if chat_id is not None:  # only members who are in a group can leave it
                await self.wire.scenario("group_quit", chat_id=chat_id,
                                         external_userid=person.external_userid)
                self._stats.left += 1
        return leave

    async def _new_tasks(self, now: datetime) -> list[CalendarPost]:
        async with self.wire.db.reader() as session:
            posts = list(await session.scalars(select(CalendarPost).where(
                CalendarPost.day == f"{now:%Y-%m-%d}", CalendarPost.transport == MASS_TASK,
                CalendarPost.msgid.is_not(None)).order_by(CalendarPost.id)))
        fresh = [p for p in posts if p.id not in self._seen]
        self._seen.update(p.id for p in fresh)
        return fresh

    async def _tasks_of(self, day: date) -> tuple[int, int]:
        async with self.wire.db.reader() as session:
            posts = list(await session.scalars(select(CalendarPost.posts).where(
                CalendarPost.day == day.isoformat(), CalendarPost.transport == MASS_TASK,
                CalendarPost.status == QUEUED)))
        return len(posts), sum("sop." in p for p in posts)


def posting_times(runtime: Runtime, day: date) -> list[str]:
    """Every HH:MM of `day` the calendar, a campaign or a talk posts at (the real scheduler
    ticks each minute; between these times it would find nothing due)."""
    calendar, talks = runtime.flows.calendar, runtime.flows.talks
    times = {c.time for c in runtime.flows.onboarding.values()}
    # A talk's posts fall on the day before it, its day and the day after (every moment of
    # each is tried: one where nothing is due posts nothing).
    times |= {f"{moment:%H:%M}" for talk in (talks.talks.values() if talks else ())
              for near in (day - timedelta(days=1), day, day + timedelta(days=1))
              for moment in talk.moments(near).values() if moment.date() == day}
    for segment in calendar.segments.values():
        times |= {g.time for g in (segment.morning, segment.evening) if g is not None}
        times |= {slot.time for slot in segment.slots}
    return sorted(times)


def first_day(days: int) -> date:
    """The first of the `days` days that ended yesterday (Asia/Shanghai)."""
    return datetime.now(SHANGHAI).date() - timedelta(days=days)


def groundwork_at(days: int) -> datetime:
    """When the operators set up WeCom: the morning before the week."""
    return at_time(first_day(days) - timedelta(days=1), GROUNDWORK_AT)
