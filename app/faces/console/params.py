"""Request parameters the console's pages share.

Row ids are checked against the largest id a table can hold (PostgreSQL's bigint, SQLite's
INTEGER): a larger number in a crafted URL would otherwise reach the database driver, which
refuses it with an error (a 500) instead of finding nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

ROW_ID_MAX = 2**63 - 1
# The longest reason an operator writes (a rejected review, a message given up on): the review
# API's limit, so the console never stores what the API would refuse.
MAX_REASON = 500

# A row id in a path: 1 .. ROW_ID_MAX, else 422 before the route runs.
RowId = Annotated[int, Path(ge=1, le=ROW_ID_MAX)]


def possible_row_id(value: int) -> bool:
    """Whether a table could hold a row with this id (form values, checked one by one)."""
    return 1 <= value <= ROW_ID_MAX


def ids_of(payload: dict[str, Any], key: str) -> list[int]:
    """The ids a flash payload lists under `key` (app/faces/console/flash.py); anything else there
    is ignored."""
    values = payload.get(key)
    return [v for v in values if isinstance(v, int)] if isinstance(values, list) else []
