"""The simulator's clock: wall time plus an offset that tests move forward.

Every platform rule (20 s welcome codes, 48 h kf window, 24 h reminders, one mass message per
day) reads this clock, so tests can jump over the windows instead of sleeping.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

# Asia/Shanghai has had no DST since 1991, so a fixed +08:00 equals the zone (and needs no tzdata).
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


class SimClock:
    """Seconds since the epoch, as WeCom would see them."""

    def __init__(self, start: float | None = None) -> None:
        # A given start freezes nothing: it only shifts the clock so now() begins there.
        self.offset_s = 0.0 if start is None else start - time.time()

    def now(self) -> float:
        return time.time() + self.offset_s

    def advance(self, seconds: float) -> float:
        self.offset_s += seconds
        return self.now()

    def set(self, epoch_s: float) -> float:
        self.offset_s = epoch_s - time.time()
        return self.now()


def shanghai_day(epoch_s: float) -> date:
    """The calendar day in China of an instant: the unit of the one-mass-message-a-day rule."""
    return datetime.fromtimestamp(epoch_s, SHANGHAI).date()


class ManualClock(SimClock):
    """A clock that stands still until moved: for unit tests of the rules."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        super().__init__()
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        self._now += seconds
        return self._now

    def set(self, epoch_s: float) -> float:
        self._now = epoch_s
        return self._now
