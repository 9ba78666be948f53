"""GET /healthz: the process is up and its database answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.archive.status import archive_status
from app.engine.db import utcnow
from app.engine.logs import get_logger

log = get_logger("sopbot.health")
router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    runtime = request.app.state.runtime
    body = {"status": "ok", "database": "ok"}
    try:
        await runtime.db.ping()
    except Exception as exc:
        log.error("healthz_database_down", error=type(exc).__name__)
        body.update(status="error", database="unreachable")
    # Each background loop this process runs (None: not run here) must still be running.
    loops = {"worker": runtime.worker, "sender": runtime.sender,
             "scheduler": runtime.scheduler, "kf_reader": runtime.kf_reader}
    if runtime.archive_reader is not None:
        loops["archive_reader"] = runtime.archive_reader
        await _archive_lag(runtime, body)
    for name, loop in loops.items():
        if loop.alive is False:
            log.error(f"healthz_{name}_stopped")
            body.update({"status": "error", name: "stopped"})
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)


async def _archive_lag(runtime: Any, body: dict[str, str]) -> None:
    """The archive must be read well inside WeCom's retention (days): lag fails the check."""
    try:
        async with runtime.db.reader() as session:
            status = await archive_status(session, utcnow())
    except Exception:
        return  # the database check above reports it
    max_lag_h = runtime.settings.archive_max_lag_h
    if status is not None and status.lagging(max_lag_h):
        log.error("healthz_archive_lagging", lag_s=round(status.lag_s or 0))
        body.update(status="error", archive=f"lagging {round((status.lag_s or 0) / 3600, 1)} h")
