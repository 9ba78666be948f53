"""Alembic revisions build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from app import migrate
from app.engine.db import sync_url
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


def test_filled_on_arrival_reaches_a_database_migrated_before_and_one_that_has_it(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    """0016 adds the column 0006 once carried: to a database that stopped at the landed 0006,
    and it leaves one made from the edited 0006 (which has it already) as it is."""
    from sqlalchemy import text

    for name, had_it in (("before.db", False), ("edited.db", True)):
        url = f"sqlite:///{tmp_path / name}"
        migrate.upgrade(url, "0015")
        engine = create_engine(sync_url(url))
        if had_it:
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE customer_group ADD COLUMN filled_on_arrival "
                                  "BOOLEAN NOT NULL DEFAULT 0"))
        migrate.upgrade(url)
        columns = [c["name"] for c in inspect(engine).get_columns("customer_group")]
        engine.dispose()
        assert columns.count("filled_on_arrival") == 1, name
        assert migrate.current_revision(url) == migrate.head_revision()
