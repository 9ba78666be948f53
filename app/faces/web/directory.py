"""POST /api/platform-users: the platform's server pushes its users (JSON list), idempotently."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel

from app.directory.service import UserRow, upsert
from app.engine.db import utcnow
from app.engine.logs import get_logger
from app.faces.web.apikey import require_api_key

log = get_logger("sopbot.directory")
MAX_ITEMS = 5000  # one request stays one short transaction; bigger lists come in pages

router = APIRouter(prefix="/api/platform-users", dependencies=[Depends(require_api_key)])


class Conflict(BaseModel):
    index: int
    error: str


class ImportAnswer(BaseModel):
    created: int
    updated: int
    unchanged: int
    conflicts: list[Conflict]


@router.post("")
async def import_platform_users(
        request: Request,
        rows: Annotated[list[UserRow], Body(max_length=MAX_ITEMS)]) -> ImportAnswer:
    """Add or update users (an invalid item rejects the whole list with 422, saying which)."""
    async with request.app.state.runtime.db.unit_of_work() as session:
        result = await upsert(session, rows, utcnow())
    log.info("platform_users_imported", created=result.created, updated=result.updated,
             unchanged=result.unchanged, skipped=len(result.conflicts))
    return ImportAnswer(created=result.created, updated=result.updated,
                        unchanged=result.unchanged,
                        conflicts=[Conflict(index=i, error=e) for i, e in result.conflicts])
