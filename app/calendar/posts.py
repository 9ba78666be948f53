"""A post the calendar asks for (a greeting, a column's slot, a talk's post) and the time of day
it is due, in Asia/Shanghai: what the planner, the talks and the onboarding build on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from app.engine.config import SHANGHAI


@dataclass(frozen=True)
class Post:
    """One post the calendar asks for, for a segment's groups on a day."""

    at: datetime  # Asia/Shanghai
    name: str  # morning, evening, slot0, slot1, ...
    priority: int
    text: str | None = None  # greetings
    column: str | None = None  # slots: the column's next item, taken when posted
    template: str | None = None
    extra: str | None = None  # added below the post (Monday's weekly calendar)
    # A talk's posts (app/calendar/talks.py): the occurrence's content key (its four posts
    # share one topic item) and the values its template uses besides the item's.
    content_key: str | None = None
    fields: tuple[tuple[str, str], ...] = ()

    def key(self, segment: str) -> str:
        """Stable per (segment, day, post): outbox keys and the content taken hang on it."""
        return f"{segment}:{self.at:%Y%m%d}:{self.name}"

    def item_key(self, segment: str) -> str:
        """What the column's item it takes is used for (a talk's four posts share one)."""
        return self.content_key or self.key(segment)


def at_time(day: date, hhmm: str) -> datetime:
    """HH:MM of the day, in Asia/Shanghai."""
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return datetime.combine(day, time(hours, minutes), SHANGHAI)
