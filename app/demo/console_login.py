"""The demo operator's console login, made with the console's own account code."""

from __future__ import annotations

import secrets

from app.db import Database


async def make_login(db: Database, userid: str) -> str | None:
    """A fresh password for `userid` (in SOPBOT_OPERATORS); None where this build has no
    console yet (app/console is imported only here, lazily, so the demo runs without it)."""
    try:
        from app.console.accounts import set_password
    except ImportError:
        return None
    password = secrets.token_urlsafe(9)  # 12 characters, a new one every run
    async with db.unit_of_work() as session:
        await set_password(session, userid, password)
    return password
