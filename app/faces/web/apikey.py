"""The API key that guards /api/...: the app's server sends it as `Authorization: Bearer KEY`.

Without SOPBOT_API_KEY the API is off (503), so a forgotten setting never leaves it open.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request


def require_api_key(request: Request) -> None:
    """A FastAPI dependency: 503 when no key is configured, 401 on a missing or wrong key."""
    configured = request.app.state.runtime.settings.api_key
    if configured is None:
        raise HTTPException(503, "the API is off: set SOPBOT_API_KEY")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = configured.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise HTTPException(401, "missing or wrong API key",
                            headers={"WWW-Authenticate": "Bearer"})
