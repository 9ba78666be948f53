"""GET /healthz: the process is up and its database answers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.logs import get_logger

log = get_logger("sopbot.health")
router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    services = request.app.state.services
    body = {"status": "ok", "database": "ok"}
    try:
        await services.db.ping()
    except Exception as exc:
        log.error("healthz_database_down", error=type(exc).__name__)
        body.update(status="error", database="unreachable")
    if services.worker.alive is False:
        log.error("healthz_worker_stopped")
        body.update(status="error", worker="stopped")
    if services.sender.alive is False:
        log.error("healthz_sender_stopped")
        body.update(status="error", sender="stopped")
    if services.scheduler.alive is False:
        log.error("healthz_scheduler_stopped")
        body.update(status="error", scheduler="stopped")
    if services.kf_reader.alive is False:
        log.error("healthz_kf_reader_stopped")
        body.update(status="error", kf_reader="stopped")
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)
