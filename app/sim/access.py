"""Who may drive the simulator: its control, inspection and scenario paths (/sim/...) answer
only requests carrying its control key; its WeCom API paths (/cgi-bin/...) may be kept to
loopback clients.

The control paths are a remote control of the simulated world: they list every request the
bot made (the members' verification links among them), move the clock, inject faults and make
people act, an operator's `/review approve` included. The key is generated when the simulator
starts unless SOPBOT_SIM_KEY gives one, and only the local operator is told it.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from fastapi import HTTPException, Request

KEY_HEADER = "X-Sim-Key"
MIN_KEY_LENGTH = 16


def new_key() -> str:
    return secrets.token_urlsafe(24)


def require_control_key(request: Request) -> None:
    """A FastAPI dependency: 401 unless the request carries the simulator's control key."""
    expected = request.app.state.sim.control_key.encode()
    given = request.headers.get(KEY_HEADER, "").encode()
    if not hmac.compare_digest(given, expected):
        raise HTTPException(401, f"the simulator's control paths need its key in {KEY_HEADER}")


def require_loopback_when_asked(request: Request) -> None:
    """A FastAPI dependency of the WeCom API paths: 404 to a client that is not on this machine
    when the simulator is built into a service (its only caller is that service, on loopback)."""
    if request.app.state.sim.settings.api_loopback_only and not is_loopback(
            request.client.host if request.client else None):
        raise HTTPException(404, "Not Found")


def is_loopback(host: str | None) -> bool:
    """Whether `host` (an address or a name) means this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False
