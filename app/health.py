"""GET /healthz: the process is up and its database answers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.logs import get_logger

log = get_logger("sopbot.health")
router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    try:
        await request.app.state.services.db.ping()
    except Exception as exc:
        log.error("healthz_database_down", error=type(exc).__name__)
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})
