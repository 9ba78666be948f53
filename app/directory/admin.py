"""The directory import as an admin job on its own database connection (the CLI's side)."""

from __future__ import annotations

from app.directory.csvfile import ParsedFile
from app.directory.service import UpsertResult, upsert
from app.engine.db import Database, utcnow


async def import_file(url: str, parsed: ParsedFile) -> tuple[UpsertResult, list[tuple[int, str]]]:
    """Upsert the good rows in one transaction; conflicts come back with their file lines."""
    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            result = await upsert(session, parsed.rows, utcnow())
    finally:
        await db.dispose()
    return result, [(parsed.lines[n], problem) for n, problem in result.conflicts]
