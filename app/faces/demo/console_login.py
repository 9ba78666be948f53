"""The demo operator's console login, made with the console's own account code."""

from __future__ import annotations

import secrets

from app.engine.db import Database
from app.faces.console.accounts import set_password


async def make_login(db: Database, userid: str) -> str:
    """A fresh password for `userid` (in SOPBOT_OPERATORS), a new one every run."""
    password = secrets.token_urlsafe(9)  # 12 characters
    async with db.unit_of_work() as session:
        await set_password(session, userid, password)
    return password
