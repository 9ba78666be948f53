"""Slows password guessing: at most LIMIT failed logins per userid per WINDOW_S, in memory.

Per process: with several replicas a guesser gets LIMIT tries on each, which still turns
millions of guesses into a handful per quarter hour. Nothing is stored, so a restart forgets.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable

LIMIT = 5
WINDOW_S = 15 * 60
# Guessing many userids must not grow memory without bound: past this many keys one goes.
MAX_KEYS = 10_000


class FailureWindow:
    """The times of each key's failures within the last `window_s`, for at most `max_keys` keys.

    Keys are kept in the order of their last failure, so the expired ones are at the front and
    go as soon as anything is counted. Looking a key up never adds it.
    """

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float],
                 max_keys: int = MAX_KEYS) -> None:
        self.limit, self.window_s, self.clock, self.max_keys = limit, window_s, clock, max_keys
        self._times: OrderedDict[Hashable, deque[float]] = OrderedDict()

    def full(self, key: Hashable) -> bool:
        """Whether `key` used up its `limit` failures in the window."""
        return self.count(key) >= self.limit

    def count(self, key: Hashable) -> int:
        self._drop_expired()
        times = self._times.get(key)
        if times is None:
            return 0
        self._trim(times)
        if not times:
            del self._times[key]
        return len(times)

    def add(self, key: Hashable) -> None:
        self._drop_expired()
        times = self._times.pop(key, None) or deque()
        self._trim(times)
        times.append(self.clock())
        self._times[key] = times  # now the most recent
        if len(self._times) > self.max_keys:
            del self._times[self._victim()]

    def forget(self, key: Hashable) -> None:
        self._times.pop(key, None)

    def __len__(self) -> int:
        return len(self._times)

    def _victim(self) -> Hashable:
        # The least recently failed key still under its limit: junk keys push out other junk,
        # never a key that reached its limit (that would hand the guesser a fresh budget).
        for key, times in self._times.items():
            if len(times) < self.limit:
                return key
        return next(iter(self._times))

    def _drop_expired(self) -> None:
        while self._times:
            key, times = next(iter(self._times.items()))
            if times and times[-1] > self._horizon():
                return
            del self._times[key]

    def _trim(self, times: deque[float]) -> None:
        horizon = self._horizon()
        while times and times[0] <= horizon:
            times.popleft()

    def _horizon(self) -> float:
        return self.clock() - self.window_s


class LoginThrottle:
    def __init__(self, limit: int = LIMIT, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS) -> None:
        self._userids = FailureWindow(limit, window_s, clock, max_keys)

    def blocked(self, userid: str) -> bool:
        """Whether `userid` used up its failures in the last window."""
        return self._userids.full(_key(userid))

    def failed(self, userid: str) -> None:
        self._userids.add(_key(userid))

    def succeeded(self, userid: str) -> None:
        self._userids.forget(_key(userid))

    def size(self) -> int:
        """How many keys the throttle holds (memory is bounded by MAX_KEYS)."""
        return len(self._userids)


def _key(userid: str) -> str:
    # "Op_Alice" and "op_alice " must share one budget, whatever the login compares.
    return userid.strip().lower()[:64]
