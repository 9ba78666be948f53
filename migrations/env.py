"""Alembic environment: runs revisions on the synchronous twin of SOPBOT_DATABASE_URL.

Revisions never import app models; they describe the schema as it was at that revision.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

from app.engine.db import is_sqlite, sync_url

config = context.config


def _url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("SOPBOT_DATABASE_URL")
    return url or "sqlite:///sopbot.db"


def run_offline() -> None:
    url = _url()
    context.configure(url=sync_url(url), literal_binds=True, render_as_batch=is_sqlite(url))
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    url = _url()
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, render_as_batch=is_sqlite(url))
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
