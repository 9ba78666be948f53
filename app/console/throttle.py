"""Slows password guessing: at most LIMIT failed logins per userid per WINDOW_S, in memory.

Per process: with several replicas a guesser gets LIMIT tries on each, which still turns
millions of guesses into a handful per quarter hour. Nothing is stored, so a restart forgets.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

LIMIT = 5
WINDOW_S = 15 * 60
# Guessing many userids must not grow memory without bound; past this many the oldest go.
MAX_KEYS = 10_000


class LoginThrottle:
    def __init__(self, limit: int = LIMIT, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._failures: dict[str, deque[float]] = {}

    def blocked(self, userid: str) -> bool:
        """Whether `userid` used up its failures in the last window."""
        return len(self._recent(_key(userid))) >= self.limit

    def failed(self, userid: str) -> None:
        key = _key(userid)
        self._recent(key).append(self.clock())
        if len(self._failures) > MAX_KEYS:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, userid: str) -> None:
        self._failures.pop(_key(userid), None)

    def _recent(self, key: str) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= self.clock() - self.window_s:
            times.popleft()
        return times


def _key(userid: str) -> str:
    # "Op_Alice" and "op_alice " must share one budget, whatever the login compares.
    return userid.strip().lower()[:64]
