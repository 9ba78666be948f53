"""Slows password guessing: failed logins counted per userid and client, per userid and per
client, each against its own limit over WINDOW_S, in memory.

The client is the address uvicorn reports (X-Forwarded-For only from a trusted proxy).
Per process: with several replicas a guesser gets the limits on each, which still turns
millions of guesses into a handful per quarter hour. Nothing is stored, so a restart forgets.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable

LIMIT = 5  # per userid and client
USERID_LIMIT = 50  # per userid, over all clients
CLIENT_LIMIT = 20  # per client, over all userids (an office behind one NAT shares it)
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

    def give_back(self, key: Hashable) -> None:
        """Take back `key`'s latest failure."""
        times = self._times.get(key)
        if times:
            times.pop()
        if not times:
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
    """Failed logins counted three ways, each with its own limit over WINDOW_S.

    Per userid and client, LIMIT: a guesser at one address gets a few tries at an operator,
    and cannot lock the operator out of their own browser elsewhere. Per userid, USERID_LIMIT:
    a ceiling for a guesser with many addresses. Per client, CLIENT_LIMIT: a ceiling over
    every userid it types, known or not (each try costs a scrypt hash). No budget knows who
    the operators are, so a 429 never tells a real userid from an unknown one.

    `charge` counts a login as failed before its password is checked and `succeeded` gives
    the attempt back: parallel guesses then cannot all pass `blocked` before the first fails.
    """

    def __init__(self, limit: int = LIMIT, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS,
                 userid_limit: int = USERID_LIMIT, client_limit: int = CLIENT_LIMIT) -> None:
        self._windows = {
            "userid_client": FailureWindow(limit, window_s, clock, max_keys),
            "userid": FailureWindow(userid_limit, window_s, clock, max_keys),
            "client": FailureWindow(client_limit, window_s, clock, max_keys),
        }

    def blocked(self, userid: str, client: str | None) -> str | None:
        """The budget a new attempt would exceed ("userid_client", "userid" or "client"),
        or None when it may go ahead."""
        keys = _keys(userid, client)
        return next((name for name, window in self._windows.items() if window.full(keys[name])),
                    None)

    def charge(self, userid: str, client: str | None) -> None:
        keys = _keys(userid, client)
        for name, window in self._windows.items():
            window.add(keys[name])

    def succeeded(self, userid: str, client: str | None) -> None:
        """This client's budget for `userid` is whole again; the ceilings get back the one
        attempt `charge` counted, no more (a success must not wipe a guesser's failures)."""
        keys = _keys(userid, client)
        self._windows["userid_client"].forget(keys["userid_client"])
        self._windows["userid"].give_back(keys["userid"])
        self._windows["client"].give_back(keys["client"])

    def size(self) -> int:
        """How many keys the throttle holds (at most 3 × MAX_KEYS)."""
        return sum(len(window) for window in self._windows.values())


def _keys(userid: str, client: str | None) -> dict[str, Hashable]:
    # "Op_Alice" and "op_alice " must share one budget, whatever the login compares.
    user, where = userid.strip().lower()[:64], client_key(client)
    return {"userid_client": (user, where), "userid": user, "client": where}


def client_key(address: str | None) -> str:
    """The client an address belongs to: an IPv4 address, or an IPv6 address's /64 (one
    subscriber's, so a guesser cannot take a fresh address for every try)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return (address or "unknown")[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
