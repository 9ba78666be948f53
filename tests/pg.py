"""A PostgreSQL schema of one's own in a shared test database: made empty, dropped after.

The test run's migrated schema (tests/conftest.py), the attack script's replicas
(tests/security) and the replica's-death bench each get one, so nothing outside it is touched
and the URL may name a shared database.

Under pytest-xdist each worker also gets a database of its own beside that one
(`worker_database`), so the workers' schemas, connections and tables never meet.
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


def worker_database(pg_url: str, worker: str, run: str) -> str:
    """The URL of pytest-xdist worker `worker`'s ("gw0", "gw1", ...) own database on the server
    `pg_url` names: `<its database>_<worker>_<run>`. `run` tells test runs apart, so two runs
    on one server at once (two checkouts, or a developer beside CI) never share a database."""
    url = make_url(pg_url)
    return url.set(database=f"{url.database}_{worker}_{run}").render_as_string(
        hide_password=False)


def create_database(server_url: str, url: str) -> None:
    """Create the database `url` names, empty (a leftover of that name goes first), through a
    connection to `server_url`'s database on the same server."""
    _run_on(server_url, f'DROP DATABASE IF EXISTS "{_name(url)}" WITH (FORCE)',
            f'CREATE DATABASE "{_name(url)}"')


def drop_database(server_url: str, url: str) -> None:
    """Drop the database `url` names, ending any session still connected to it."""
    _run_on(server_url, f'DROP DATABASE IF EXISTS "{_name(url)}" WITH (FORCE)')


def _name(url: str) -> str:
    name = make_url(url).database
    assert name and '"' not in name, name
    return name


def _run_on(server_url: str, *statements: str) -> None:
    # CREATE and DROP DATABASE refuse to run inside a transaction block.
    admin = create_engine(sync_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        admin.dispose()
