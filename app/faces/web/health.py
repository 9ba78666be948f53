"""GET /healthz: the process is up and its database answers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

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
    for name, loop in loops.items():
        if loop.alive is False:
            log.error(f"healthz_{name}_stopped")
            body.update({"status": "error", name: "stopped"})
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)
