"""Alembic revisions build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from app import migrate
from app.db import sync_url
from app.models import Base


def test_migrated_schema_matches_models(db_url: str) -> None:
    engine = create_engine(sync_url(db_url))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert diff == []
    assert {"inbox_event", "alembic_version"} <= tables
    assert migrate.is_current(db_url)


def test_upgrade_is_idempotent_and_downgrade_is_clean(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    from alembic import command

    command.downgrade(migrate.alembic_config(url), "base")
    engine = create_engine(sync_url(url))
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == {"alembic_version"}
    engine.dispose()
