"""A PostgreSQL schema of one's own in a shared test database: made empty, dropped after.

The test run's migrated schema (tests/conftest.py), the attack script's replicas
(tests/security) and the replica's-death bench each get one, so nothing outside it is touched
and the URL may name a shared database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.engine.db import sync_url


@contextmanager
def scratch_schema(pg_url: str, schema: str) -> Iterator[str]:
    """An empty schema `schema` (an old one of that name goes first); yields the URL that
    works in it (its search_path), and drops it at the end."""
    admin = create_engine(sync_url(pg_url))
    try:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
