"""gettoken and the access_token check every other API starts with (§5.1)."""

from __future__ import annotations

import hmac
import math
import secrets

from app.faces.sim.state import Json, Reject, Token, World

TOKEN_LIFETIME_S = 7200


def gettoken(world: World, query: dict[str, str]) -> Json:
    """The same token until it expires (or is invalidated), then a new one."""
    corpid, secret = query.get("corpid", ""), query.get("corpsecret", "")
    if not corpid:
        raise Reject(41002, "corpid missing")
    if corpid != world.settings.corp_id:
        raise Reject(40013, "invalid corpid")
    if not secret:
        raise Reject(41004, "corpsecret missing")
    app = _app_of(world, secret)
    token = _current(world, app) or _issue(world, app)
    # Assumption: a repeated fetch reports the remaining lifetime, not a fresh 7200.
    return {"access_token": token.value,
            "expires_in": math.ceil(token.expires_at - world.now())}


def _app_of(world: World, secret: str) -> str:
    for known, app in world.settings.accepted_secrets().items():
        if hmac.compare_digest(known.encode(), secret.encode()):
            return app
    raise Reject(40001, "invalid credential")


def _current(world: World, app: str) -> Token | None:
    token = world.tokens.get(world.current_tokens.get(app, ""))
    if token is None or token.rejected_with is not None or world.now() >= token.expires_at:
        return None
    return token


def _issue(world: World, app: str) -> Token:
    now = world.now()
    # Unpredictable on purpose: a token cached from an earlier simulator run must not work.
    token = Token(f"sim_{app}_{secrets.token_urlsafe(48)}", app, now, now + TOKEN_LIFETIME_S)
    world.tokens[token.value] = token
    world.current_tokens[app] = token.value
    return token


def check_token(world: World, value: str | None) -> Token:
    """41001 without a token, 40014 unknown (or forced), 42001 expired (or forced)."""
    if not value:
        raise Reject(41001, "access_token missing")
    token = world.tokens.get(value)
    if token is None:
        raise Reject(40014, "invalid access_token")
    if token.rejected_with is not None:
        raise Reject(token.rejected_with, "access_token rejected")
    if world.now() >= token.expires_at:
        raise Reject(42001, "access_token expired")
    return token


def invalidate_all(world: World, errcode: int) -> int:
    """Make every live token answer `errcode` from now on; gettoken then issues new ones."""
    if errcode not in (40014, 42001):
        raise ValueError("errcode must be 40014 or 42001")
    live = [t for t in world.tokens.values() if t.rejected_with is None]
    for token in live:
        token.rejected_with = errcode
    return len(live)
