"""Schema migrations through Alembic, driven from code so no ini file is needed."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

import migrations
from app.engine.db import sync_url


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(database_url: str) -> str | None:
    engine = create_engine(sync_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def is_current(database_url: str) -> bool:
    return current_revision(database_url) == head_revision()


def schema_problem(database_url: str) -> str | None:
    """Why this code cannot run on the database's schema, or None when it is current."""
    current, head = current_revision(database_url), head_revision()
    if current == head:
        return None
    if current is None:
        return "no sopbot schema yet; run `sopbot migrate`"
    known = {script.revision for script in ScriptDirectory.from_config(
        alembic_config(database_url)).walk_revisions()}
    if current not in known:
        return (f"schema revision {current} is newer than this sopbot (expects {head}); "
                "upgrade sopbot")
    return f"schema revision {current} is behind this sopbot ({head}); run `sopbot migrate`"
