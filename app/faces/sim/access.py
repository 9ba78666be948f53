"""Who may drive the simulator: its control, inspection and scenario paths (/sim/...) answer
only requests carrying its control key; a simulator built into the service answers its WeCom
API paths (/cgi-bin/...) only to a client on this machine that no proxy forwarded.

The control paths are a remote control of the simulated world: they list every request the
bot made (the members' verification links among them), move the clock, inject faults and make
people act, an operator's `/review approve` included. The key is generated when the simulator
starts unless SOPBOT_SIM_KEY gives one, and only the local operator is told it. Both checks run
before anything reads the request's body.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from typing import Protocol

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

KEY_HEADER = "X-Sim-Key"
# A request through a proxy on this machine comes from loopback too: these say it was forwarded.
FORWARDED = ("x-forwarded-for", "forwarded", "x-real-ip")


def new_key() -> str:
    return secrets.token_urlsafe(24)


class Keyed(Protocol):
    """What the middleware needs of the simulator (app/faces/sim/core.py `Sim`, which imports this
    module for `new_key`): its control key."""

    control_key: str


class SimAccess:
    """ASGI middleware of the simulator's app (see the module's docstring)."""

    def __init__(self, app: ASGIApp, sim: Keyed, loopback_api: bool = False) -> None:
        self.app, self.sim, self.loopback_api = app, sim, loopback_api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self._refusal(scope) if scope["type"] == "http" else None
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        path, headers = _route_path(scope), Headers(scope=scope)
        if path.startswith("/sim/"):
            given = headers.get(KEY_HEADER, "").encode()
            if not hmac.compare_digest(given, self.sim.control_key.encode()):
                return JSONResponse({"detail": "the simulator's control paths need its key in "
                                               f"{KEY_HEADER}"}, 401)
        elif self.loopback_api and not _local_and_direct(scope, headers):
            return JSONResponse({"detail": "Not Found"}, 404)
        return None


def _route_path(scope: Scope) -> str:
    """The path inside this app (a mounted app sees its mount point in root_path)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def _local_and_direct(scope: Scope, headers: Headers) -> bool:
    client = scope.get("client")
    return is_loopback(client[0] if client else None) and not any(
        name in headers for name in FORWARDED)


def is_loopback(host: str | None) -> bool:
    """Whether `host` (an address or a name) means this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False
