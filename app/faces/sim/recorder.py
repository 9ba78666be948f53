"""Every API request the simulator received, for tests to read back (GET /sim/requests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Credentials never enter the record: tests read it, and it may be printed.
HIDDEN_QUERY = ("access_token", "key", "corpsecret")
# A long demo must not grow without bound; the newest entries are the interesting ones.
MAX_ENTRIES = 100_000


@dataclass
class RequestLog:
    entries: list[dict[str, Any]] = field(default_factory=list)
    last_seq: int = 0

    def start(self, now: float, method: str, api: str, query: dict[str, str]) -> dict[str, Any]:
        """Open an entry; the dispatcher fills in body, errcode and fault as it goes."""
        self.last_seq += 1
        entry: dict[str, Any] = {
            "seq": self.last_seq, "time": now, "method": method, "path": api,
            "query": {k: v for k, v in query.items() if k not in HIDDEN_QUERY},
            "body": None, "upload": None, "errcode": None, "http_status": 200, "fault": None}
        self.entries.append(entry)
        if len(self.entries) > MAX_ENTRIES:
            del self.entries[:len(self.entries) - MAX_ENTRIES]
        return entry

    def select(self, path: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        wanted = path.removeprefix("/").removeprefix("cgi-bin/") if path else None
        return [e for e in self.entries
                if e["seq"] > since and (wanted is None or e["path"] == wanted)]

    def clear(self) -> None:
        # Sequence numbers keep growing so a `since` taken before the clear stays meaningful.
        self.entries.clear()
